//! The WAV form of a preview, for browsers that cannot play Ogg Vorbis (Safari
//! says no to `canPlayType('audio/ogg; codecs="vorbis"')`): the clip is decoded
//! and written as 16-bit PCM. Previews are short (a few seconds), so the whole
//! clip is decoded in memory.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::DecoderOptions;
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// The longest preview turned into WAV, in frames (a minute at 48 kHz).
const MAX_FRAMES: usize = 48_000 * 60;

/// Decodes an Ogg Vorbis clip into a WAV file's bytes.
pub fn ogg_to_wav(ogg: Vec<u8>) -> Result<Vec<u8>, String> {
    let stream = MediaSourceStream::new(Box::new(Cursor::new(ogg)), MediaSourceStreamOptions::default());
    let mut hint = Hint::new();
    hint.with_extension("ogg");
    let probed = symphonia::default::get_probe()
        .format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        .map_err(|e| format!("the preview is not Ogg Vorbis: {e}"))?;
    let mut reader = probed.format;
    let track = reader.default_track().ok_or("the preview holds no audio track")?.clone();
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| format!("cannot decode the preview: {e}"))?;
    let mut rate = track.codec_params.sample_rate.unwrap_or(44_100);
    let mut channels = track.codec_params.channels.map_or(1, |c| c.count()) as u16;
    let mut pcm: Vec<i16> = Vec::new();
    loop {
        let packet = match reader.next_packet() {
            Ok(packet) => packet,
            Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymphoniaError::ResetRequired) => break,
            Err(e) => return Err(format!("cannot read the preview: {e}")),
        };
        let decoded = match decoder.decode(&packet) {
            Ok(decoded) => decoded,
            Err(SymphoniaError::DecodeError(_)) => continue,
            Err(e) => return Err(format!("cannot decode the preview: {e}")),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        channels = spec.channels.count() as u16;
        let mut buf = SampleBuffer::<i16>::new(decoded.capacity() as u64, spec);
        buf.copy_interleaved_ref(decoded);
        pcm.extend_from_slice(buf.samples());
        if pcm.len() / usize::from(channels.max(1)) > MAX_FRAMES {
            break;
        }
    }
    Ok(wav_bytes(rate, channels.max(1), &pcm))
}

/// A RIFF/WAVE file of 16-bit interleaved PCM.
pub fn wav_bytes(rate: u32, channels: u16, pcm: &[i16]) -> Vec<u8> {
    let data_len = (pcm.len() * 2) as u32;
    let mut out = Vec::with_capacity(44 + pcm.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&channels.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(channels) * 2).to_le_bytes());
    out.extend_from_slice(&(channels * 2).to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    for s in pcm {
        out.extend_from_slice(&s.to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_header_describes_its_data() {
        let wav = wav_bytes(44_100, 2, &[0, 1, -1, 2]);
        assert_eq!(&wav[..4], b"RIFF");
        assert_eq!(wav.len(), 44 + 8);
        assert_eq!(u32::from_le_bytes(wav[40..44].try_into().unwrap()), 8);
    }
}
