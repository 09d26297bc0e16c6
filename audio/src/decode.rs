//! Recognising a file, opening it with symphonia and decoding it packet by packet.
//!
//! The container is recognised from the file's first bytes before symphonia sees it: its
//! probe would otherwise scan past junk looking for anything that resembles a sync word, and
//! random bytes often do. Decoded packets are converted to `f32` planes (one reused buffer)
//! and handed to a [`Meter`]; nothing else is kept.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use smpl_protocol::AudioFormat;

use super::descriptor::{Descriptor, DescriptorBuilder};
use super::key::{KeyDetector, KeyEstimate};
use super::preview::PreviewEncoder;
use super::tempo::{TempoDetector, TempoEstimate};
use super::tonality::Tonality;
use symphonia::core::audio::{AudioBuffer, AudioBufferRef};
use symphonia::core::codecs::{self, CodecParameters, CodecType, DecoderOptions};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader, Track};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use super::AudioError;
use super::meter::{Measurements, Meter};

/// What decoding a whole file produced.
pub(super) struct Decoded {
    pub format: AudioFormat,
    pub sample_rate: u32,
    pub channels: u16,
    pub bit_depth: Option<u16>,
    pub measurements: Measurements,
    /// The preview clip, when one could be made (see [`PreviewSink`]).
    pub preview: Option<Vec<u8>>,
    /// The sound's fingerprint; `None` for silence or a sound too short to describe.
    pub descriptor: Option<Descriptor>,
    /// Detected tempo and key; `None` when the detector is not confident.
    pub tempo: Option<TempoEstimate>,
    pub key: Option<KeyEstimate>,
    /// What the harmonicity test found (`None` when nothing was decoded).
    pub tonality: Option<Tonality>,
}

/// The leading bytes that identify a container.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Signature {
    /// `RIFF....WAVE`
    Riff,
    /// `FORM....AIFF` or `FORM....AIFC`
    Form,
    /// `fLaC`
    Flac,
    /// `OggS`
    Ogg,
    /// An ID3v2 tag, followed by MP3 frames (or, rarely, FLAC).
    Id3,
    /// An MPEG audio frame sync at offset 0.
    MpegSync,
}

/// How many leading bytes [`sniff`] looks at.
const SNIFF_LEN: usize = 12;

fn sniff(head: &[u8]) -> Option<Signature> {
    match head {
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'A', b'V', b'E', ..] => Some(Signature::Riff),
        [b'F', b'O', b'R', b'M', _, _, _, _, b'A', b'I', b'F', b'F' | b'C', ..] => Some(Signature::Form),
        [b'f', b'L', b'a', b'C', ..] => Some(Signature::Flac),
        [b'O', b'g', b'g', b'S', ..] => Some(Signature::Ogg),
        [b'I', b'D', b'3', ..] => Some(Signature::Id3),
        [0xFF, b, ..] if b & 0xE0 == 0xE0 => Some(Signature::MpegSync),
        _ => None,
    }
}

/// The format to report, from the container signature and the codec inside it.
fn format_of(signature: Signature, codec: CodecType) -> Result<AudioFormat, String> {
    match signature {
        Signature::Riff => Ok(AudioFormat::Wav),
        Signature::Form => Ok(AudioFormat::Aiff),
        Signature::Flac => Ok(AudioFormat::Flac),
        Signature::Ogg => Ok(AudioFormat::Ogg),
        Signature::Id3 if codec == codecs::CODEC_TYPE_FLAC => Ok(AudioFormat::Flac),
        Signature::Id3 | Signature::MpegSync if codec == codecs::CODEC_TYPE_MP3 => Ok(AudioFormat::Mp3),
        Signature::Id3 | Signature::MpegSync => {
            Err(format!("MPEG stream holds {} rather than MP3", codec_name(codec)))
        }
    }
}

fn codec_name(codec: CodecType) -> String {
    match symphonia::default::get_codecs().get_codec(codec) {
        Some(descriptor) => descriptor.long_name.to_string(),
        None => format!("codec {codec}"),
    }
}

/// Integer and float PCM: exact samples, unlike A-law and µ-law.
const LINEAR_PCM: &[CodecType] = &[
    codecs::CODEC_TYPE_PCM_S32LE,
    codecs::CODEC_TYPE_PCM_S32LE_PLANAR,
    codecs::CODEC_TYPE_PCM_S32BE,
    codecs::CODEC_TYPE_PCM_S32BE_PLANAR,
    codecs::CODEC_TYPE_PCM_S24LE,
    codecs::CODEC_TYPE_PCM_S24LE_PLANAR,
    codecs::CODEC_TYPE_PCM_S24BE,
    codecs::CODEC_TYPE_PCM_S24BE_PLANAR,
    codecs::CODEC_TYPE_PCM_S16LE,
    codecs::CODEC_TYPE_PCM_S16LE_PLANAR,
    codecs::CODEC_TYPE_PCM_S16BE,
    codecs::CODEC_TYPE_PCM_S16BE_PLANAR,
    codecs::CODEC_TYPE_PCM_S8,
    codecs::CODEC_TYPE_PCM_S8_PLANAR,
    codecs::CODEC_TYPE_PCM_U32LE,
    codecs::CODEC_TYPE_PCM_U32LE_PLANAR,
    codecs::CODEC_TYPE_PCM_U32BE,
    codecs::CODEC_TYPE_PCM_U32BE_PLANAR,
    codecs::CODEC_TYPE_PCM_U24LE,
    codecs::CODEC_TYPE_PCM_U24LE_PLANAR,
    codecs::CODEC_TYPE_PCM_U24BE,
    codecs::CODEC_TYPE_PCM_U24BE_PLANAR,
    codecs::CODEC_TYPE_PCM_U16LE,
    codecs::CODEC_TYPE_PCM_U16LE_PLANAR,
    codecs::CODEC_TYPE_PCM_U16BE,
    codecs::CODEC_TYPE_PCM_U16BE_PLANAR,
    codecs::CODEC_TYPE_PCM_U8,
    codecs::CODEC_TYPE_PCM_U8_PLANAR,
    codecs::CODEC_TYPE_PCM_F32LE,
    codecs::CODEC_TYPE_PCM_F32LE_PLANAR,
    codecs::CODEC_TYPE_PCM_F32BE,
    codecs::CODEC_TYPE_PCM_F32BE_PLANAR,
    codecs::CODEC_TYPE_PCM_F64LE,
    codecs::CODEC_TYPE_PCM_F64LE_PLANAR,
    codecs::CODEC_TYPE_PCM_F64BE,
    codecs::CODEC_TYPE_PCM_F64BE_PLANAR,
];

/// Whether a codec stores exact PCM (so the declared frame count must be met and the bit
/// depth is meaningful). Integer and float PCM and FLAC are; A-law, µ-law, ADPCM and the
/// perceptual codecs are not.
fn is_lossless(codec: CodecType) -> bool {
    codec == codecs::CODEC_TYPE_FLAC || LINEAR_PCM.contains(&codec)
}

/// Bits per stored sample for lossless codecs; float PCM carries no `bits_per_sample` in
/// symphonia's parameters, so it is derived from the codec.
fn bit_depth(params: &CodecParameters) -> Option<u16> {
    if !is_lossless(params.codec) {
        return None;
    }
    if let Some(bits) = params.bits_per_sample {
        return u16::try_from(bits).ok();
    }
    match params.codec {
        codecs::CODEC_TYPE_PCM_F32LE
        | codecs::CODEC_TYPE_PCM_F32LE_PLANAR
        | codecs::CODEC_TYPE_PCM_F32BE
        | codecs::CODEC_TYPE_PCM_F32BE_PLANAR => Some(32),
        codecs::CODEC_TYPE_PCM_F64LE
        | codecs::CODEC_TYPE_PCM_F64LE_PLANAR
        | codecs::CODEC_TYPE_PCM_F64BE
        | codecs::CODEC_TYPE_PCM_F64BE_PLANAR => Some(64),
        _ => None,
    }
}

/// Reads `numSampleFrames` from the COMM chunk of an AIFF / AIFF-C file (big-endian chunks
/// after the 12-byte `FORM` header). `None` if there is no readable COMM chunk; symphonia then
/// reports the problem.
fn aiff_declared_frames(file: &mut File) -> io::Result<Option<u64>> {
    let mut pos = 12u64;
    // Real files have a handful of chunks before SSND; stop looking after a few dozen.
    for _ in 0..64 {
        file.seek(SeekFrom::Start(pos))?;
        let mut header = [0u8; 8];
        if file.read_exact(&mut header).is_err() {
            return Ok(None);
        }
        let len = u64::from(u32::from_be_bytes([header[4], header[5], header[6], header[7]]));
        match &header[..4] {
            b"COMM" => {
                let mut comm = [0u8; 6];
                if file.read_exact(&mut comm).is_err() {
                    return Ok(None);
                }
                let frames = u32::from_be_bytes([comm[2], comm[3], comm[4], comm[5]]);
                return Ok(Some(u64::from(frames)));
            }
            _ => pos += 8 + len + (len & 1),
        }
    }
    Ok(None)
}

/// Opens `path` with symphonia's probe (all its readers; [`sniff`] has already checked that
/// the file starts like one of ours).
fn open_reader(path: &Path, errors: &Errors<'_>, gapless: bool) -> Result<Box<dyn FormatReader>, AudioError> {
    let file = File::open(path).map_err(|e| errors.io(e))?;
    let stream = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
        hint.with_extension(ext);
    }
    let format_options = FormatOptions { enable_gapless: gapless, ..FormatOptions::default() };
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &format_options, &MetadataOptions::default())
        .map_err(|e| errors.open(e))?;
    Ok(probed.format)
}

fn first_audio_track(reader: &dyn FormatReader, errors: &Errors<'_>) -> Result<Track, AudioError> {
    reader
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != codecs::CODEC_TYPE_NULL)
        .cloned()
        .ok_or_else(|| errors.unsupported("it holds no audio track"))
}

/// Builds errors that carry the file path.
struct Errors<'a>(&'a Path);

impl Errors<'_> {
    fn io(&self, source: io::Error) -> AudioError {
        AudioError::Io { path: self.0.to_path_buf(), source }
    }

    fn unsupported(&self, reason: impl Into<String>) -> AudioError {
        AudioError::Unsupported { path: self.0.to_path_buf(), reason: reason.into() }
    }

    fn corrupt(&self, reason: impl Into<String>) -> AudioError {
        AudioError::Corrupt { path: self.0.to_path_buf(), reason: reason.into() }
    }

    /// Maps an error from opening (probing) the container.
    fn open(&self, err: SymphoniaError) -> AudioError {
        match err {
            SymphoniaError::IoError(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.corrupt("the file ends inside its header")
            }
            SymphoniaError::IoError(e) => self.io(e),
            SymphoniaError::Unsupported(what) => self.unsupported(what),
            other => self.corrupt(format!("bad header: {other}")),
        }
    }
}

/// Decodes all of `path` into a [`Meter`].
pub(super) fn decode_file(path: &Path) -> Result<Decoded, AudioError> {
    let errors = Errors(path);
    let mut file = File::open(path).map_err(|e| errors.io(e))?;
    let mut head = Vec::with_capacity(SNIFF_LEN);
    (&mut file).take(SNIFF_LEN as u64).read_to_end(&mut head).map_err(|e| errors.io(e))?;
    if head.is_empty() {
        return Err(errors.unsupported("the file is empty"));
    }
    let signature =
        sniff(&head).ok_or_else(|| errors.unsupported("its first bytes match no known format"))?;
    // symphonia 0.5 derives an AIFF's length from the SSND chunk size, which includes an
    // 8-byte sub-header, so it promises up to 4 frames too many (and may read 8 bytes past
    // the samples). The COMM chunk states the true count.
    let aiff_frames = match signature {
        Signature::Form => aiff_declared_frames(&mut file).map_err(|e| errors.io(e))?,
        _ => None,
    };
    drop(file);

    let mut reader = open_reader(path, &errors, true)?;
    let mut track = first_audio_track(reader.as_ref(), &errors)?;
    // Gapless mode trims MP3 encoder delay and padding from the LAME header. Without one,
    // symphonia still cuts the stream at its length estimate from the file size, which can
    // drop the last frame; every decoder keeps all frames then, and so do we.
    if track.codec_params.codec == codecs::CODEC_TYPE_MP3 && track.codec_params.delay.is_none() {
        reader = open_reader(path, &errors, false)?;
        track = first_audio_track(reader.as_ref(), &errors)?;
    }
    let track_id = track.id;
    let params = track.codec_params.clone();
    let format = format_of(signature, params.codec).map_err(|r| errors.unsupported(r))?;
    let lossless = is_lossless(params.codec);
    let declared_frames = aiff_frames.or(params.n_frames).filter(|_| lossless);
    let bit_depth = bit_depth(&params);

    let decoder_options = DecoderOptions {
        // FLAC carries an MD5 of its samples: check it, it is cheap next to decoding.
        verify: params.codec == codecs::CODEC_TYPE_FLAC,
    };
    let mut decoder =
        symphonia::default::get_codecs().make(&params, &decoder_options).map_err(|e| match e {
            SymphoniaError::Unsupported(_) => {
                errors.unsupported(format!("no decoder for {} in this build", codec_name(params.codec)))
            }
            other => errors.corrupt(format!("cannot set up the decoder: {other}")),
        })?;

    let mut state = DecodeState {
        errors: &errors,
        frame_limit: aiff_frames,
        meter: None,
        scratch: None,
        skipped_packets: 0,
        preview: PreviewSink::default(),
        detectors: None,
    };
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            // symphonia reports the end of a stream as an unexpected EOF.
            Err(SymphoniaError::IoError(e)) if e.kind() == io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::IoError(e)) => return Err(errors.io(e)),
            Err(SymphoniaError::ResetRequired) => {
                return Err(errors.unsupported("its stream parameters change mid-file"));
            }
            // A damaged page or frame header in a lossy stream: keep what decoded so far.
            Err(SymphoniaError::DecodeError(_)) if !lossless => break,
            Err(e) => return Err(errors.corrupt(format!("cannot read a packet: {e}"))),
        };
        if packet.track_id() != track_id {
            continue;
        }
        match decoder.decode(&packet) {
            Ok(buffer) => state.feed(buffer)?,
            // Players skip a damaged frame of a lossy stream; so does analysis.
            Err(SymphoniaError::DecodeError(_) | SymphoniaError::IoError(_)) if !lossless => {
                state.skipped_packets += 1;
            }
            Err(e) => return Err(errors.corrupt(format!("cannot decode a packet: {e}"))),
        }
    }
    if decoder.finalize().verify_ok == Some(false) {
        return Err(errors.corrupt("the decoded samples do not match the file's MD5 checksum"));
    }

    let skipped = state.skipped_packets;
    let preview = state.preview.finish(path);
    let (descriptor, tempo, key, tonality) = match state.detectors {
        Some(d) => {
            let (key, tonality) = d.key.finish();
            (d.descriptor.finish(), d.tempo.finish(), key, Some(tonality))
        }
        None => (None, None, None, None),
    };
    let Some(meter) = state.meter else {
        return Err(if skipped > 0 {
            errors.corrupt(format!("none of its {skipped} audio packets decode"))
        } else {
            AudioError::Empty { path: path.to_path_buf() }
        });
    };
    let (sample_rate, channels) = (meter.sample_rate(), meter.channels());
    let measurements = meter.finish();
    if let Some(declared) = declared_frames.filter(|&n| n > measurements.frames) {
        return Err(AudioError::Truncated {
            path: path.to_path_buf(),
            declared,
            decoded: measurements.frames,
        });
    }
    Ok(Decoded {
        format,
        sample_rate,
        channels,
        bit_depth,
        measurements,
        preview,
        descriptor,
        tempo,
        key,
        tonality,
    })
}

/// The decode loop's mutable state, apart from the reader and decoder.
struct DecodeState<'a> {
    errors: &'a Errors<'a>,
    /// Frames past this count are not audio (see the AIFF note in [`decode_file`]).
    frame_limit: Option<u64>,
    /// Created from the first decoded buffer, whose spec is authoritative.
    meter: Option<Meter>,
    /// Reused `f32` copy of each decoded buffer.
    scratch: Option<AudioBuffer<f32>>,
    skipped_packets: u64,
    preview: PreviewSink,
    /// Created with the meter, from the first decoded buffer.
    detectors: Option<Detectors>,
}

/// What else is computed from the same planes as the measurements.
struct Detectors {
    descriptor: DescriptorBuilder,
    tempo: TempoDetector,
    key: KeyDetector,
}

impl Detectors {
    fn new(rate: u32, channels: u16) -> Detectors {
        Detectors {
            descriptor: DescriptorBuilder::new(rate, channels),
            tempo: TempoDetector::new(rate, channels),
            key: KeyDetector::new(rate, channels),
        }
    }

    fn add(&mut self, planes: &[&[f32]]) {
        self.descriptor.add(planes);
        self.tempo.add(planes);
        self.key.add(planes);
    }
}

/// The preview clip, made from the same decoded planes as the measurements. A
/// preview that cannot be made (an exotic rate, an encoder error) is left out with
/// a warning; the analysis itself does not fail for it.
#[derive(Default)]
struct PreviewSink {
    encoder: Option<PreviewEncoder>,
    /// The encoder has all it needs.
    full: bool,
    error: Option<String>,
}

impl PreviewSink {
    fn add(&mut self, planes: &[&[f32]], rate: u32, channels: u16) {
        if self.full || self.error.is_some() {
            return;
        }
        let encoder = match &mut self.encoder {
            Some(encoder) => encoder,
            None => match PreviewEncoder::new(rate, channels) {
                Ok(encoder) => self.encoder.insert(encoder),
                Err(e) => {
                    self.error = Some(e.to_string());
                    return;
                }
            },
        };
        match encoder.add(planes) {
            Ok(more) => self.full = !more,
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    fn finish(self, path: &Path) -> Option<Vec<u8>> {
        let result = match (self.error, self.encoder) {
            (Some(e), _) => Err(e),
            (None, Some(encoder)) => encoder.finish().map_err(|e| e.to_string()),
            (None, None) => return None,
        };
        result.map_err(|e| tracing::warn!("no preview for {}: {e}", path.display())).ok()
    }
}

impl DecodeState<'_> {
    fn feed(&mut self, buffer: AudioBufferRef<'_>) -> Result<(), AudioError> {
        if buffer.frames() == 0 {
            return Ok(());
        }
        let spec = *buffer.spec();
        let channels = u16::try_from(spec.channels.count())
            .map_err(|_| self.errors.unsupported("it has too many channels"))?;
        let meter = match &mut self.meter {
            Some(meter) => {
                if meter.sample_rate() != spec.rate || meter.channels() != channels {
                    return Err(self.errors.unsupported(format!(
                        "its format changes mid-file from {} Hz × {} to {} Hz × {}",
                        meter.sample_rate(),
                        meter.channels(),
                        spec.rate,
                        channels
                    )));
                }
                meter
            }
            None => {
                if spec.rate == 0 || channels == 0 {
                    return Err(self.errors.corrupt("it declares no sample rate or channels"));
                }
                self.detectors = Some(Detectors::new(spec.rate, channels));
                self.meter.insert(Meter::new(spec.rate, channels))
            }
        };
        let scratch = match &mut self.scratch {
            Some(s) if s.capacity() >= buffer.capacity() && *s.spec() == spec => s,
            slot => slot.insert(buffer.make_equivalent::<f32>()),
        };
        buffer.convert(scratch);
        let planes = scratch.planes();
        let planes = planes.planes();
        let cut: Vec<&[f32]>;
        let planes = match self.frame_limit {
            Some(limit) if meter.frames() + planes[0].len() as u64 > limit => {
                let keep = usize::try_from(limit.saturating_sub(meter.frames())).unwrap_or(0);
                cut = planes.iter().map(|p| &p[..keep.min(p.len())]).collect();
                &cut[..]
            }
            _ => planes,
        };
        meter.add(planes);
        self.preview.add(planes, spec.rate, channels);
        if let Some(detectors) = &mut self.detectors {
            detectors.add(planes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_known_signatures() {
        assert_eq!(sniff(b"RIFF\0\0\0\0WAVEfmt "), Some(Signature::Riff));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFC"), Some(Signature::Form));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFF"), Some(Signature::Form));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some(Signature::Flac));
        assert_eq!(sniff(b"OggS\0\x02"), Some(Signature::Ogg));
        assert_eq!(sniff(b"ID3\x04\0\0"), Some(Signature::Id3));
        assert_eq!(sniff(&[0xFF, 0xFB, 0x90, 0x64]), Some(Signature::MpegSync));
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI "), None);
        assert_eq!(sniff(b"FORM\0\0\0\08SVX"), None);
        assert_eq!(sniff(b"\0\0\0\x20ftypM4A "), None);
        assert_eq!(sniff(b"RIFF"), None);
        assert_eq!(sniff(b""), None);
    }

    #[test]
    fn lossless_codecs_and_depths() {
        assert!(is_lossless(codecs::CODEC_TYPE_PCM_S16LE));
        assert!(is_lossless(codecs::CODEC_TYPE_PCM_F64BE_PLANAR));
        assert!(is_lossless(codecs::CODEC_TYPE_FLAC));
        assert!(!is_lossless(codecs::CODEC_TYPE_PCM_ALAW));
        assert!(!is_lossless(codecs::CODEC_TYPE_MP3));
        assert!(!is_lossless(codecs::CODEC_TYPE_VORBIS));
        let mut params = CodecParameters::new();
        params.for_codec(codecs::CODEC_TYPE_PCM_F32LE);
        assert_eq!(bit_depth(&params), Some(32));
        params.for_codec(codecs::CODEC_TYPE_MP3).with_bits_per_sample(16);
        assert_eq!(bit_depth(&params), None);
    }

    #[test]
    fn mpeg_layer_must_be_three() {
        assert_eq!(format_of(Signature::MpegSync, codecs::CODEC_TYPE_MP3), Ok(AudioFormat::Mp3));
        assert_eq!(format_of(Signature::Id3, codecs::CODEC_TYPE_FLAC), Ok(AudioFormat::Flac));
        assert!(format_of(Signature::MpegSync, codecs::CODEC_TYPE_AAC).is_err());
    }
}
