//! Audition clips ("previews"): the first few seconds of a sample as a small Ogg Vorbis file.
//!
//! A preview is what a peer can always fetch for free to hear a sample before downloading it, so
//! it has to be small (tens of kilobytes), quick to make, and playable everywhere: Ogg Vorbis is
//! decoded by symphonia itself and played by browsers.
//!
//! [`PreviewEncoder`] plugs into the single decoding pass that the analysis already makes: it is
//! fed the decoded `f32` planes packet by packet and never holds more than the preview itself.
//! Each packet goes through these stages, straight into the encoder:
//!
//! 1. **Cut.** Only the first [`PREVIEW_SECONDS`] of the source are kept. When the source goes on
//!    past that point, the last [`FADE_SECONDS`] of the preview fade out (half a cosine), so the
//!    clip does not end in a click. To know whether the source goes on, those last frames are held
//!    back until either a later frame arrives (the clip is cut: fade) or the input ends (the
//!    sample was short enough: no fade).
//! 2. **Down-mix.** Mono stays mono, stereo stays stereo. Three or more channels become **mono**,
//!    the mean of all channels: the encoder is not told the channel layout, and the order of
//!    channels in decoded planes depends on the codec (WAV and FLAC put the centre third, Vorbis
//!    second), so any stereo fold-down would place some channels on the wrong side for some
//!    files. The mean never clips, whatever the layout. Samples are also clamped to -1..=1 and a
//!    NaN becomes silence, since libvorbis must not see non-finite values.
//! 3. **Resample.** Sources up to 48 kHz keep their rate. Faster ones (88.2, 96, 176.4, 192 kHz
//!    and the like) are brought down to 44.1 or 48 kHz by an exact rational polyphase
//!    windowed-sinc filter: the preview gains nothing from content above 20 kHz (the encoder
//!    cuts at about 14 kHz at this quality anyway), while encoding at 96 kHz or more costs more
//!    time and bytes. An odd high rate with no small ratio to 44.1 or 48 kHz is encoded as it is
//!    when the encoder takes it (up to 200 kHz).
//! 4. **Encode** with aoTuV libvorbis (through `vorbis_rs`) at quality [`PREVIEW_QUALITY`], in
//!    blocks of exactly [`ENCODE_BLOCK`] frames.
//!
//! The Ogg stream serial is a constant, so the same input always gives the same bytes (on the
//! same build and platform): a preview can be content-addressed and re-made identically.

use std::num::{NonZeroU8, NonZeroU32};
use std::ops::Range;

use vorbis_rs::{VorbisBitrateManagementStrategy, VorbisEncoder, VorbisEncoderBuilder};

/// How much of the source the preview holds at most, in seconds.
pub const PREVIEW_SECONDS: f32 = 5.0;

/// How long the fade-out at the end of a cut preview lasts, in seconds.
pub const FADE_SECONDS: f32 = 0.05;

/// The Vorbis VBR quality (libvorbis scale, -0.2..=1.0). At -0.1 aoTuV aims at about 45 kbit/s for
/// stereo 44.1 kHz and low-passes at 13.8 kHz: clear enough to judge a sound, small enough that a
/// 5 s preview stays around 30 KB.
pub const PREVIEW_QUALITY: f32 = -0.1;

/// The lowest source sample rate accepted, in Hz (libvorbis encodes from here on).
pub const MIN_SAMPLE_RATE: u32 = 1_000;

/// The highest source sample rate accepted, in Hz. Rates above [`MAX_PREVIEW_RATE`] are resampled.
pub const MAX_SAMPLE_RATE: u32 = 384_000;

/// The highest rate a preview is encoded at, in Hz; faster sources are resampled (to this rate
/// or its 44.1 kHz-family twin, see [`PREVIEW_RATES`]).
///
/// This is the main knob on cost: libvorbis needs about 3.3 ms to set up at 32 kHz and above but
/// 1.2 ms at 24 kHz and below, and half the time per second of audio; at 24 kHz, though, it
/// low-passes at 8.5–9.5 kHz instead of 13.8 kHz.
pub const MAX_PREVIEW_RATE: u32 = 48_000;

/// How many frames libvorbis is handed at a time (the last block excepted). Its output depends
/// on how the input is split into calls, so a fixed split makes the bytes independent of how the
/// decoder happens to cut its packets; 1024 is the size libvorbis' documentation suggests.
pub const ENCODE_BLOCK: usize = 1024;

/// The highest rate libvorbis encodes, in Hz; used when a fast source cannot be resampled.
const MAX_VORBIS_RATE: u32 = 200_000;

/// Resampling to a target rate needs `L` filter phases (the target rate divided by the greatest
/// common divisor of both rates); beyond this many the rate is considered odd and not resampled.
const MAX_PHASES: u64 = 64;

/// The fixed serial of the single logical Ogg stream ("smpl").
const STREAM_SERIAL: i32 = 0x736d_706c;

/// What can go wrong while making a preview.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    /// The source's sample rate cannot be previewed.
    #[error(
        "sample rate {0} Hz is not supported for previews: it must be {MIN_SAMPLE_RATE}..={MAX_SAMPLE_RATE} Hz, \
         and a rate above {MAX_VORBIS_RATE} Hz must have a simple ratio to {high} or {low} Hz",
        high = PREVIEW_RATES[0],
        low = PREVIEW_RATES[1]
    )]
    UnsupportedSampleRate(u32),
    /// The source was said to have no channels.
    #[error("a source with no channels cannot be previewed")]
    NoChannels,
    /// A packet did not have one plane per channel.
    #[error("packet has {got} planes but the source has {expected} channels")]
    PlaneCount {
        /// The number of channels given to [`PreviewEncoder::new`].
        expected: usize,
        /// The number of planes in the packet.
        got: usize,
    },
    /// The planes of a packet did not all have the same length.
    #[error("plane {channel} of a packet has {got} samples but plane 0 has {expected}")]
    PlaneLength {
        /// The index of the first plane whose length differs.
        channel: usize,
        /// The length of plane 0.
        expected: usize,
        /// The length of that plane.
        got: usize,
    },
    /// [`PreviewEncoder::finish`] was called before any audio was fed.
    #[error("no audio was fed, so there is nothing to preview")]
    Empty,
    /// libvorbis refused the parameters or failed while encoding.
    #[error("Vorbis encoder failed: {0}")]
    Encoder(#[from] vorbis_rs::VorbisError),
}

/// Makes one preview from a source fed packet by packet; see the [module docs](self).
///
/// Memory is bounded by the preview, not the source: after the cut point input is ignored, and
/// besides libvorbis' own state and the encoded bytes (tens of kilobytes) only the fade window
/// and a resampling filter's history are held.
pub struct PreviewEncoder {
    /// Channels of the source.
    in_channels: usize,
    /// Source frames that make up the preview when the source is long enough.
    limit: u64,
    /// Source frames at the end of a cut preview that are faded out.
    fade_len: u64,
    /// Source frames taken so far (at most `limit`).
    taken: u64,
    /// Whether a frame past `limit` was seen: the preview is complete and ends in a fade.
    cut: bool,
    /// The down-mixed frames of the fade window, held back until it is known whether to fade.
    tail: Vec<Vec<f32>>,
    /// Scratch: the current packet after down-mixing, one vector per preview channel.
    mix: Vec<Vec<f32>>,
    /// Everything after the down-mix: resampling and encoding.
    sink: Sink,
}

impl std::fmt::Debug for PreviewEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreviewEncoder")
            .field("in_channels", &self.in_channels)
            .field("out_channels", &self.mix.len())
            .field("out_rate", &self.sink.rate)
            .field("limit", &self.limit)
            .field("taken", &self.taken)
            .field("cut", &self.cut)
            .finish_non_exhaustive()
    }
}

impl PreviewEncoder {
    /// Prepares a preview of a source with this sample rate (Hz) and channel count.
    ///
    /// Fails when the rate is outside [`MIN_SAMPLE_RATE`]..=[`MAX_SAMPLE_RATE`] (or is an odd rate
    /// above 200 kHz that cannot be resampled simply), when there are no channels, or when
    /// libvorbis refuses the resulting format.
    pub fn new(sample_rate: u32, channels: u16) -> Result<PreviewEncoder, PreviewError> {
        if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
            return Err(PreviewError::UnsupportedSampleRate(sample_rate));
        }
        if channels == 0 {
            return Err(PreviewError::NoChannels);
        }
        let out_channels: u8 = if channels == 2 { 2 } else { 1 };
        let (out_rate, resampler) = match resampling_ratio(sample_rate) {
            Some((out_rate, up, down)) => (out_rate, Some(Resampler::new(up, down, out_channels.into()))),
            None if sample_rate <= MAX_VORBIS_RATE => (sample_rate, None),
            None => return Err(PreviewError::UnsupportedSampleRate(sample_rate)),
        };
        let encoder = VorbisEncoderBuilder::new_with_serial(
            NonZeroU32::new(out_rate).ok_or(PreviewError::UnsupportedSampleRate(sample_rate))?,
            NonZeroU8::new(out_channels).ok_or(PreviewError::NoChannels)?,
            Vec::new(),
            STREAM_SERIAL,
        )
        .bitrate_management_strategy(VorbisBitrateManagementStrategy::QualityVbr {
            target_quality: PREVIEW_QUALITY,
        })
        .build()?;
        let rate = f64::from(sample_rate);
        let limit = (f64::from(PREVIEW_SECONDS) * rate).round() as u64;
        let fade_len = ((f64::from(FADE_SECONDS) * rate).round() as u64).clamp(1, limit);
        let out_channels = usize::from(out_channels);
        Ok(PreviewEncoder {
            in_channels: usize::from(channels),
            limit,
            fade_len,
            taken: 0,
            cut: false,
            tail: vec![Vec::new(); out_channels],
            mix: vec![Vec::new(); out_channels],
            sink: Sink {
                rate: out_rate,
                resampler,
                resampled: vec![Vec::new(); out_channels],
                staged: vec![Vec::with_capacity(ENCODE_BLOCK); out_channels],
                encoder,
            },
        })
    }

    /// The sample rate the preview is encoded at, in Hz.
    #[cfg(test)]
    pub fn preview_rate(&self) -> u32 {
        self.sink.rate
    }

    /// The number of channels of the preview (1 or 2).
    #[cfg(test)]
    pub fn preview_channels(&self) -> u16 {
        self.mix.len() as u16
    }

    /// Feeds one decoded packet: one plane per source channel, all of the same length, samples
    /// nominally in -1..=1.
    ///
    /// Returns `Ok(true)` while more input is wanted and `Ok(false)` once a frame past the
    /// preview's end has been seen (the preview is complete; later packets are ignored, so the
    /// caller may stop feeding). A packet that ends exactly at the preview's end still returns
    /// `true`: one more frame tells whether the source goes on and the clip must fade out.
    ///
    /// A malformed packet is refused with an error before anything is taken from it, so the
    /// encoder stays usable. An empty packet is accepted and changes nothing. After an
    /// [`PreviewError::Encoder`] error the preview is lost: drop the encoder.
    pub fn add(&mut self, planes: &[&[f32]]) -> Result<bool, PreviewError> {
        if planes.len() != self.in_channels {
            return Err(PreviewError::PlaneCount { expected: self.in_channels, got: planes.len() });
        }
        let frames = planes.first().map_or(0, |p| p.len());
        if let Some((channel, plane)) = planes.iter().enumerate().find(|(_, p)| p.len() != frames) {
            return Err(PreviewError::PlaneLength { channel, expected: frames, got: plane.len() });
        }
        if self.cut {
            return Ok(false);
        }
        let wanted = usize::try_from(self.limit - self.taken).unwrap_or(usize::MAX);
        let take = frames.min(wanted);
        down_mix(planes, take, &mut self.mix);

        // Frames before the fade window go on at once; the rest wait in `tail`.
        let hold_from = self.limit - self.fade_len;
        let direct = usize::try_from(hold_from.saturating_sub(self.taken)).unwrap_or(usize::MAX).min(take);
        self.sink.push(&self.mix, 0..direct)?;
        for (tail, mixed) in self.tail.iter_mut().zip(&self.mix) {
            tail.extend_from_slice(&mixed[direct..take]);
        }
        self.taken += take as u64;

        if frames > take {
            self.cut = true;
            fade_out(&mut self.tail);
            let held = self.tail.first().map_or(0, Vec::len);
            self.sink.push(&self.tail, 0..held)?;
            self.tail.iter_mut().for_each(Vec::clear);
        }
        Ok(!self.cut)
    }

    /// Ends the preview and returns the Ogg Vorbis file.
    ///
    /// Fails with [`PreviewError::Empty`] when no frame was ever fed.
    pub fn finish(mut self) -> Result<Vec<u8>, PreviewError> {
        if self.taken == 0 {
            return Err(PreviewError::Empty);
        }
        // Not cut: the source ended within the preview, so its own ending is kept as it is.
        let held = self.tail.first().map_or(0, Vec::len);
        self.sink.push(&self.tail, 0..held)?;
        self.sink.finish()
    }
}

/// Down-mixes the first `frames` frames of `planes` into `mix` (cleared first), which has one
/// vector per preview channel. See the module docs for the rules.
fn down_mix(planes: &[&[f32]], frames: usize, mix: &mut [Vec<f32>]) {
    /// Clamps to -1..=1 (so infinities too) and silences NaN.
    fn clean(x: f32) -> f32 {
        if x.is_nan() { 0.0 } else { x.clamp(-1.0, 1.0) }
    }
    for out in mix.iter_mut() {
        out.clear();
    }
    if mix.len() == planes.len() {
        for (out, plane) in mix.iter_mut().zip(planes) {
            out.extend(plane[..frames].iter().map(|&x| clean(x)));
        }
    } else if let [out] = mix {
        out.resize(frames, 0.0);
        for plane in planes {
            for (acc, &x) in out.iter_mut().zip(&plane[..frames]) {
                *acc += clean(x);
            }
        }
        let scale = 1.0 / planes.len() as f32;
        for acc in out.iter_mut() {
            *acc *= scale;
        }
    }
}

/// Applies a half-cosine fade from full level to silence across the held-back frames.
fn fade_out(tail: &mut [Vec<f32>]) {
    for channel in tail {
        let len = channel.len() as f64;
        for (i, x) in channel.iter_mut().enumerate() {
            let gain = 0.5 * (1.0 + (std::f64::consts::PI * (i as f64 + 0.5) / len).cos());
            *x *= gain as f32;
        }
    }
}

/// The rates a fast source is resampled to: [`MAX_PREVIEW_RATE`] and its 44.1 kHz-family twin
/// (44.1 kHz for 48 kHz), so that both families get a small, exact ratio.
pub const PREVIEW_RATES: [u32; 2] = [MAX_PREVIEW_RATE, MAX_PREVIEW_RATE / 160 * 147];

/// The preview's rate and the rational ratio `up / down` to reach it, when the source is faster
/// than [`MAX_PREVIEW_RATE`] and one of [`PREVIEW_RATES`] is reached with at most
/// [`MAX_PHASES`] filter phases (the one needing fewer wins). `None` means no resampling.
fn resampling_ratio(in_rate: u32) -> Option<(u32, u64, u64)> {
    if in_rate <= MAX_PREVIEW_RATE {
        return None;
    }
    PREVIEW_RATES
        .into_iter()
        .map(|out_rate| {
            let g = gcd(u64::from(in_rate), u64::from(out_rate));
            (out_rate, u64::from(out_rate) / g, u64::from(in_rate) / g)
        })
        .filter(|&(_, up, _)| up <= MAX_PHASES)
        .min_by_key(|&(_, up, _)| up)
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Resampling and encoding: everything after the down-mix.
struct Sink {
    /// The rate the preview is encoded at.
    rate: u32,
    resampler: Option<Resampler>,
    /// Scratch: the resampler's output for the current push.
    resampled: Vec<Vec<f32>>,
    /// Frames waiting to make up a whole [`ENCODE_BLOCK`].
    staged: Vec<Vec<f32>>,
    encoder: VorbisEncoder<Vec<u8>>,
}

impl Sink {
    /// Passes `frames` of `channels` (one vector per preview channel) on towards the encoder.
    fn push(&mut self, channels: &[Vec<f32>], frames: Range<usize>) -> Result<(), PreviewError> {
        if frames.is_empty() {
            return Ok(());
        }
        match &mut self.resampler {
            Some(resampler) => {
                resampler.process(channels, frames, &mut self.resampled);
                let len = self.resampled.first().map_or(0, Vec::len);
                stage(&mut self.staged, &mut self.encoder, &self.resampled, 0..len)
            }
            None => stage(&mut self.staged, &mut self.encoder, channels, frames),
        }
    }

    /// Drains the resampler and the staged frames and ends the Vorbis stream.
    fn finish(mut self) -> Result<Vec<u8>, PreviewError> {
        if let Some(resampler) = &mut self.resampler {
            resampler.flush(&mut self.resampled);
            let len = self.resampled.first().map_or(0, Vec::len);
            stage(&mut self.staged, &mut self.encoder, &self.resampled, 0..len)?;
        }
        submit(&mut self.staged, &mut self.encoder)?;
        Ok(self.encoder.finish()?)
    }
}

/// Appends `frames` of `channels` to `staged`, handing every whole [`ENCODE_BLOCK`] to libvorbis.
fn stage(
    staged: &mut [Vec<f32>],
    encoder: &mut VorbisEncoder<Vec<u8>>,
    channels: &[Vec<f32>],
    frames: Range<usize>,
) -> Result<(), PreviewError> {
    let mut at = frames.start;
    while at < frames.end {
        let room = ENCODE_BLOCK - staged.first().map_or(0, Vec::len);
        let end = frames.end.min(at + room);
        for (staged, channel) in staged.iter_mut().zip(channels) {
            staged.extend_from_slice(&channel[at..end]);
        }
        at = end;
        if staged.first().map_or(0, Vec::len) >= ENCODE_BLOCK {
            submit(staged, encoder)?;
        }
    }
    Ok(())
}

/// Hands the staged frames to libvorbis, if there are any: to libvorbis a block of zero frames
/// means "end of stream".
fn submit(staged: &mut [Vec<f32>], encoder: &mut VorbisEncoder<Vec<u8>>) -> Result<(), PreviewError> {
    if staged.first().is_some_and(|s| !s.is_empty()) {
        encoder.encode_audio_block(&*staged)?;
        staged.iter_mut().for_each(Vec::clear);
    }
    Ok(())
}

/// An exact rational sample-rate converter (by `up / down`, for going down) streaming over
/// planes: a windowed-sinc low-pass evaluated at `up` fixed phases.
///
/// Output frame `n` sits at input position `n * down / up`; it is the dot product of the
/// `2 * half` input frames around that position with the phase's precomputed kernel. The
/// kernel is symmetric, so the output is not delayed, and missing input before the start and
/// after the end counts as silence. The filter passes up to 34 % of the output rate and stops
/// (at least 60 dB down) from its Nyquist frequency on.
struct Resampler {
    up: u64,
    down: u64,
    /// Each kernel spans input offsets `-(half - 1)..=half` around the output position.
    half: usize,
    /// `up` kernels of `2 * half` taps, phase after phase.
    kernels: Vec<f32>,
    /// Per channel, the input still needed, starting at absolute input frame `first`.
    history: Vec<Vec<f32>>,
    first: i64,
    /// Input frames received.
    fed: u64,
    /// Output frames produced.
    made: u64,
}

impl Resampler {
    /// Builds the filter for `up / down` (< 1) and `channels` channels.
    fn new(up: u64, down: u64, channels: usize) -> Resampler {
        /// The passband edge and the stopband edge, as fractions of the output rate.
        const PASS: f64 = 0.34;
        const STOP: f64 = 0.5;
        /// Stopband attenuation, dB.
        const ATTENUATION: f64 = 60.0;

        let ratio = up as f64 / down as f64;
        // Frequencies in cycles per input frame.
        let cutoff = 0.5 * (PASS + STOP) * ratio;
        let transition = (STOP - PASS) * ratio;
        // Kaiser's estimates of the window's shape and the filter's length.
        let beta = 0.1102 * (ATTENUATION - 8.7);
        let taps = (ATTENUATION - 7.95) / (2.285 * 2.0 * std::f64::consts::PI * transition);
        let reach = taps / 2.0;
        let half = reach.ceil().max(1.0) as usize;
        let width = 2 * half;

        let norm = bessel_i0(beta);
        let mut kernels = Vec::with_capacity(up as usize * width);
        for phase in 0..up {
            let frac = phase as f64 / up as f64;
            let start = kernels.len();
            for k in 0..width {
                let t = (k as f64 - (half as f64 - 1.0)) - frac;
                let x = t / reach;
                let window = if x.abs() < 1.0 { bessel_i0(beta * (1.0 - x * x).sqrt()) / norm } else { 0.0 };
                kernels.push((2.0 * cutoff * sinc(2.0 * cutoff * t) * window) as f32);
            }
            // Exactly unit gain at DC for every phase.
            let sum: f32 = kernels[start..].iter().sum();
            kernels[start..].iter_mut().for_each(|c| *c /= sum);
        }
        Resampler {
            up,
            down,
            half,
            kernels,
            history: vec![vec![0.0; half - 1]; channels],
            first: -(half as i64 - 1),
            fed: 0,
            made: 0,
        }
    }

    /// Takes `frames` of `input` and writes the output frames now computable to `out`
    /// (cleared first).
    fn process(&mut self, input: &[Vec<f32>], frames: Range<usize>, out: &mut [Vec<f32>]) {
        self.fed += frames.len() as u64;
        for (history, channel) in self.history.iter_mut().zip(input) {
            history.extend_from_slice(&channel[frames.clone()]);
        }
        out.iter_mut().for_each(Vec::clear);
        self.produce(u64::MAX, out);
    }

    /// Writes the remaining output frames (the input's end padded with silence) to `out`
    /// (cleared first).
    fn flush(&mut self, out: &mut [Vec<f32>]) {
        for history in &mut self.history {
            history.resize(history.len() + self.half, 0.0);
        }
        out.iter_mut().for_each(Vec::clear);
        let total = (self.fed * self.up).div_ceil(self.down);
        self.produce(total, out);
    }

    /// Computes output frames while their input is at hand, up to `until` frames in all, then
    /// forgets input no later output needs.
    fn produce(&mut self, until: u64, out: &mut [Vec<f32>]) {
        let width = 2 * self.half;
        let available = self.history.first().map_or(0, Vec::len) as i64;
        while self.made < until {
            let position = self.made * self.down;
            let base = (position / self.up) as i64;
            let phase = (position % self.up) as usize;
            let start = base - (self.half as i64 - 1) - self.first;
            if start + width as i64 > available {
                break;
            }
            let start = start as usize;
            let kernel = &self.kernels[phase * width..(phase + 1) * width];
            for (history, out) in self.history.iter().zip(out.iter_mut()) {
                out.push(dot(&history[start..start + width], kernel));
            }
            self.made += 1;
        }
        let next_base = (self.made * self.down / self.up) as i64;
        let unneeded = (next_base - (self.half as i64 - 1) - self.first).clamp(0, available);
        if unneeded > 0 {
            for history in &mut self.history {
                history.drain(..unneeded as usize);
            }
            self.first += unneeded;
        }
    }
}

/// A dot product written with eight independent sums so that it vectorises.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut sums = [0.0f32; 8];
    let (a8, a_rest) = a.as_chunks::<8>();
    let (b8, b_rest) = b.as_chunks::<8>();
    for (x, y) in a8.iter().zip(b8) {
        for ((sum, x), y) in sums.iter_mut().zip(x).zip(y) {
            *sum += x * y;
        }
    }
    let rest: f32 = a_rest.iter().zip(b_rest).map(|(x, y)| x * y).sum();
    sums.iter().sum::<f32>() + rest
}

/// `sin(pi x) / (pi x)`.
fn sinc(x: f64) -> f64 {
    if x.abs() < 1e-12 {
        1.0
    } else {
        let px = std::f64::consts::PI * x;
        px.sin() / px
    }
}

/// The modified Bessel function of the first kind, order 0, by its power series (the Kaiser
/// window's building block).
fn bessel_i0(x: f64) -> f64 {
    let quarter_x2 = x * x / 4.0;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut k = 1.0;
    while term > 1e-12 * sum {
        term *= quarter_x2 / (k * k);
        sum += term;
        k += 1.0;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ratio chosen for common and odd rates.
    #[test]
    fn resampling_ratios() {
        assert_eq!(resampling_ratio(44_100), None);
        assert_eq!(resampling_ratio(48_000), None);
        assert_eq!(resampling_ratio(8_000), None);
        assert_eq!(resampling_ratio(88_200), Some((44_100, 1, 2)));
        assert_eq!(resampling_ratio(96_000), Some((48_000, 1, 2)));
        assert_eq!(resampling_ratio(176_400), Some((44_100, 1, 4)));
        assert_eq!(resampling_ratio(192_000), Some((48_000, 1, 4)));
        assert_eq!(resampling_ratio(352_800), Some((44_100, 1, 8)));
        assert_eq!(resampling_ratio(64_000), Some((48_000, 3, 4)));
        assert_eq!(resampling_ratio(50_000), Some((48_000, 24, 25)));
        // 95.904 kHz has no small ratio to either: encoded as it is.
        assert_eq!(resampling_ratio(95_904), None);
    }

    /// The filter passes a tone in its passband at unit gain and removes one above the output's
    /// Nyquist frequency, and the output has the expected length and no delay.
    #[test]
    fn resampler_passes_and_stops() {
        for &(up, down, in_rate) in &[(1u64, 2u64, 96_000.0f64), (1, 4, 192_000.0), (3, 4, 64_000.0)] {
            let out_rate = in_rate * up as f64 / down as f64;
            let n = in_rate as usize; // one second
            let tone = |f: f64| -> Vec<f32> {
                (0..n).map(|i| (2.0 * std::f64::consts::PI * f * i as f64 / in_rate).sin() as f32).collect()
            };
            let run = |input: Vec<f32>| -> Vec<f32> {
                let mut r = Resampler::new(up, down, 1);
                let mut out = vec![Vec::new()];
                let mut all = Vec::new();
                // Uneven pieces, to exercise the streaming.
                let mut at = 0;
                for piece in [1usize, 7, 1000, 4093].iter().cycle() {
                    if at >= input.len() {
                        break;
                    }
                    let end = (at + piece).min(input.len());
                    r.process(std::slice::from_ref(&input), at..end, &mut out);
                    all.extend_from_slice(&out[0]);
                    at = end;
                }
                r.flush(&mut out);
                all.extend_from_slice(&out[0]);
                all
            };
            let expected_len = (n as u64 * up).div_ceil(down) as usize;
            let pass_freq = 0.3 * out_rate;
            let passed = run(tone(pass_freq));
            assert_eq!(passed.len(), expected_len);
            // Compare with the ideal output in the middle (away from the edges).
            let mid = expected_len / 4..3 * expected_len / 4;
            let max_err = mid
                .clone()
                .map(|i| {
                    let ideal = (2.0 * std::f64::consts::PI * pass_freq * i as f64 / out_rate).sin();
                    (passed[i] as f64 - ideal).abs()
                })
                .fold(0.0, f64::max);
            assert!(max_err < 0.003, "{up}/{down}: passband error {max_err}");
            let stopped = run(tone(0.55 * out_rate));
            let peak = mid.map(|i| stopped[i].abs()).fold(0.0, f32::max);
            assert!(peak < 0.001, "{up}/{down}: stopband leak {peak}");
        }
    }

    #[test]
    fn down_mix_rules() {
        let a = [0.5f32, f32::NAN, 2.0];
        let b = [0.1f32, 0.2, f32::NEG_INFINITY];
        let c = [0.3f32, 0.4, 0.0];
        let mut mono = vec![Vec::new()];
        down_mix(&[&a], 3, &mut mono);
        assert_eq!(mono[0], vec![0.5, 0.0, 1.0]);
        let mut stereo = vec![Vec::new(), Vec::new()];
        down_mix(&[&a, &b], 2, &mut stereo);
        assert_eq!(stereo, vec![vec![0.5, 0.0], vec![0.1, 0.2]]);
        down_mix(&[&a, &b, &c], 3, &mut mono);
        let expected = [0.3f32, 0.2, 0.0];
        for (got, want) in mono[0].iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
