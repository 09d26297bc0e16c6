//! A compact timbre / envelope / rhythm descriptor for "similar sounds" search.
//!
//! [`DescriptorBuilder`] is fed decoded `f32` planes packet by packet (the same streaming pass
//! that measures loudness and duration) and keeps bounded state: one analysis frame of mono
//! samples, running sums, and a coarse energy envelope of the analysed window. Only the first
//! [`ANALYSIS_SECONDS`] after the sound starts are analysed spectrally; after that each sample
//! costs a multiply-add for the duration estimate.
//!
//! The result is 32 features (see [`FEATURE_NAMES`]), each standardised with fixed constants
//! measured on real drum recordings and quantised to `i8`, so a descriptor is 32 bytes: it
//! travels in a manifest as 64 hex digits and an exact nearest-neighbour scan over a million of
//! them touches 32 MB with integer arithmetic.
//!
//! Every feature is independent of gain (spectral shapes, ratios and times relative to the
//! envelope's own peak), so the same sound at a different level gets the same descriptor.

use std::sync::{Arc, Mutex, PoisonError};

use realfft::{RealFftPlanner, RealToComplex};

pub use smpl_protocol::{DESCRIPTOR_DIMS, Descriptor};

/// How much audio, from the first non-silent sample, the spectral and envelope analysis sees.
/// Long enough for a cymbal's decay or a couple of bars of a loop, short enough to be cheap.
pub const ANALYSIS_SECONDS: f32 = 5.0;

/// What each dimension holds, in order (for reports and debugging).
pub const FEATURE_NAMES: [&str; DESCRIPTOR_DIMS] = [
    "mfcc1",
    "mfcc2",
    "mfcc3",
    "mfcc4",
    "mfcc5",
    "mfcc6",
    "mfcc7",
    "mfcc8",
    "mfcc9",
    "mfcc10",
    "mfcc11",
    "mfcc12",
    "mfcc1_sd",
    "mfcc2_sd",
    "mfcc3_sd",
    "mfcc4_sd",
    "mfcc5_sd",
    "mfcc6_sd",
    "mfcc7_sd",
    "mfcc8_sd",
    "centroid",
    "centroid_sd",
    "rolloff85",
    "flatness",
    "zcr",
    "low_ratio",
    "high_ratio",
    "attack",
    "decay20",
    "temporal_centroid",
    "duration",
    "onset_rate",
];

/// Number of cepstral coefficients whose (weighted) mean is kept: c1..c12 (c0 is loudness).
const MFCC_MEANS: usize = 12;
/// Number of cepstral coefficients whose (weighted) spread over time is kept: c1..c8.
const MFCC_SPREADS: usize = 8;
/// Mel filter bank: 40 triangular bands between these frequencies.
const MEL_BANDS: usize = 40;
const MEL_LOW_HZ: f32 = 30.0;
const MEL_HIGH_HZ: f32 = 16_000.0;
/// Frame length in seconds (rounded to a power of two in samples); the hop is half of it.
/// 46 ms resolves ~22 Hz, enough to place a kick's fundamental.
const FRAME_SECONDS: f32 = 0.046;
/// Envelope block length in seconds (rounded to a power of two): fine enough for attack times.
const BLOCK_SECONDS: f32 = 0.0029;
/// A sound starts at the first sample at or above -60 dBFS; anything before is leading silence.
const START_LEVEL: f32 = 0.001;
/// Shortest sound (after its start) that gets a descriptor.
const MIN_SECONDS: f32 = 0.01;
/// Band floor relative to the frame's energy (-70 dB), so the log never sees zero and the
/// features do not depend on gain.
const RELATIVE_FLOOR: f32 = 1e-7;
/// Energy split points for the low / high energy ratios.
const LOW_SPLIT_HZ: f32 = 150.0;
const HIGH_SPLIT_HZ: f32 = 5_000.0;
/// An onset is a local maximum of the mean positive log-mel difference above this many dB,
/// in a frame no more than 40 dB below the loudest frame so far.
const ONSET_FLUX_DB: f32 = 2.5;
const ONSET_GATE: f32 = 1e-4;
/// Quantisation: one standard deviation is this many steps, so `i8` spans about ±4 sigma.
const STEPS_PER_SIGMA: f32 = 32.0;

/// Per-dimension standardisation: `z = (raw - MEAN) / SCALE`, measured on the Hydrogen drum
/// kits (all files, all instruments) with `eval --calibrate` and rounded.
const MEAN: [f32; DESCRIPTOR_DIMS] = [
    40.4102, 0.0114, 14.4456, -2.4378, 1.6295, -1.1142, 0.9211, -1.2919, 0.5464, -0.6086, 0.6972, 0.3036,
    12.4774, 8.7000, 5.9097, 5.1658, 3.9676, 3.8528, 2.9853, 3.0612, 6.9099, 0.4057, 7.2316, -17.2554,
    7.7001, -19.5260, -19.2836, -4.3831, -2.2430, -2.7652, -0.2902, 1.0439,
];
const SCALE: [f32; DESCRIPTOR_DIMS] = [
    42.1237, 28.1688, 14.8434, 14.6271, 10.8331, 11.0379, 8.5447, 9.0754, 7.3315, 6.7158, 7.0002, 5.5923,
    7.7985, 5.6850, 3.1975, 2.9898, 1.8885, 2.1146, 1.4547, 1.6393, 1.5991, 0.3716, 1.7061, 12.1707, 1.4083,
    14.4812, 19.3132, 1.3462, 1.1751, 1.0748, 1.1236, 0.6438,
];

/// Standardises and quantises raw features (as from [`DescriptorBuilder::finish_features`]).
pub fn quantise(raw: &[f32; DESCRIPTOR_DIMS]) -> Descriptor {
    let mut out = [0i8; DESCRIPTOR_DIMS];
    for (d, slot) in out.iter_mut().enumerate() {
        let z = (raw[d] - MEAN[d]) / SCALE[d] * STEPS_PER_SIGMA;
        // `as` saturates and maps NaN to 0; the clamp keeps the range symmetric.
        *slot = z.round().clamp(-127.0, 127.0) as i8;
    }
    Descriptor(out)
}

/// Streaming analysis state for one file. Memory is bounded by the frame length (a few
/// thousand floats), the mel filter bank and the envelope of the first [`ANALYSIS_SECONDS`].
pub struct DescriptorBuilder {
    /// `None` when the sample rate is unusable; every call is then a no-op and `finish` is `None`.
    analysis: Option<Analysis>,
}

/// Fixed parameters derived from the sample rate.
struct Setup {
    sample_rate: f32,
    frame_len: usize,
    hop: usize,
    block_len: usize,
    /// Samples (from the start of the sound) that the frame / envelope analysis covers.
    window_samples: u64,
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    /// Per mel band: first bin and weights (normalised to sum 1).
    mel: Vec<(usize, Vec<f32>)>,
    /// DCT-II rows for c1..c12 over the mel bands.
    dct: Vec<[f32; MEL_BANDS]>,
    /// Bin centre frequency in Hz, for centroid / rolloff.
    bin_hz: Vec<f32>,
    low_bins: usize,
    high_bin: usize,
}

/// Running sums, weighted by frame amplitude (the square root of frame energy) so the loud
/// part of a sound counts and its fading tail does not dominate.
#[derive(Default)]
struct Sums {
    weight: f64,
    mfcc: [f64; MFCC_MEANS],
    mfcc_sq: [f64; MFCC_SPREADS],
    log_centroid: f64,
    log_centroid_sq: f64,
    log_rolloff: f64,
    flatness_db: f64,
    energy: f64,
    low_energy: f64,
    high_energy: f64,
    frames: u64,
    onsets: u32,
}

struct Analysis {
    setup: Arc<Setup>,
    started: bool,
    /// Samples since the sound started.
    elapsed: u64,
    /// Pending mono samples of the current frame (up to `frame_len`).
    frame: Vec<f32>,
    scratch_in: Vec<f32>,
    scratch_out: Vec<realfft::num_complex::Complex<f32>>,
    fft_scratch: Vec<realfft::num_complex::Complex<f32>>,
    power: Vec<f32>,
    prev_log_mel: Option<[f32; MEL_BANDS]>,
    /// Flux of the previous two frames and whether the previous frame passed the gate, for
    /// the local-maximum test.
    flux_prev: f32,
    flux_prev2: f32,
    prev_gated: bool,
    max_frame_energy: f32,
    sums: Sums,
    zero_crossings: u64,
    last_sign: bool,
    /// Current envelope block's sum of squares and sample count.
    block_sum: f32,
    block_fill: usize,
    /// Mean square per block over the analysed window (at most `envelope_max` blocks).
    envelope: Vec<f32>,
    envelope_max: usize,
    /// Reused mono mix-down buffer.
    mono: Vec<f32>,
    /// Whole-file duration tracking: loudest block and last block within 60 dB of it.
    blocks: u64,
    peak_block: f32,
    last_loud_block: u64,
}

/// Sum of squares with eight independent accumulators, so it vectorises.
fn sum_squares(x: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().map(|v| v * v).sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v * v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

fn pow2_near(samples: f32) -> usize {
    let exp = samples.max(1.0).log2().round().clamp(4.0, 14.0);
    1usize << (exp as u32)
}

fn hz_to_mel(hz: f32) -> f32 {
    2595.0 * (1.0 + hz / 700.0).log10()
}

fn mel_to_hz(mel: f32) -> f32 {
    700.0 * (10f32.powf(mel / 2595.0) - 1.0)
}

impl Setup {
    fn new(sample_rate: u32) -> Option<Setup> {
        if !(4_000..=768_000).contains(&sample_rate) {
            return None;
        }
        let sr = sample_rate as f32;
        let frame_len = pow2_near(sr * FRAME_SECONDS).max(256);
        let hop = frame_len / 2;
        let block_len = pow2_near(sr * BLOCK_SECONDS);
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(frame_len);
        // Hann window.
        let window = (0..frame_len)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / frame_len as f32).cos())
            .collect();
        let bins = frame_len / 2 + 1;
        let bin_hz: Vec<f32> = (0..bins).map(|k| k as f32 * sr / frame_len as f32).collect();
        let nyquist = sr / 2.0;
        // Bands above Nyquist (low sample rates) are kept so the layout is the same for every
        // rate; they fall back to the single top bin.
        let (lo_mel, hi_mel) = (hz_to_mel(MEL_LOW_HZ), hz_to_mel(MEL_HIGH_HZ));
        let edges: Vec<f32> = (0..MEL_BANDS + 2)
            .map(|i| mel_to_hz(lo_mel + (hi_mel - lo_mel) * i as f32 / (MEL_BANDS + 1) as f32))
            .collect();
        let mut mel = Vec::with_capacity(MEL_BANDS);
        for b in 0..MEL_BANDS {
            let (left, centre, right) = (edges[b], edges[b + 1], edges[b + 2]);
            let mut first = None;
            let mut weights = Vec::new();
            for (k, &f) in bin_hz.iter().enumerate() {
                let w = if f > left && f < right {
                    if f <= centre { (f - left) / (centre - left) } else { (right - f) / (right - centre) }
                } else {
                    0.0
                };
                if w > 0.0 {
                    first.get_or_insert(k);
                    weights.push(w);
                } else if first.is_some() {
                    break;
                }
            }
            let total: f32 = weights.iter().sum();
            match first {
                Some(k) if total > 0.0 => {
                    weights.iter_mut().for_each(|w| *w /= total);
                    mel.push((k, weights));
                }
                // Narrower than a bin (low bands) or above Nyquist: use the nearest bin.
                _ => {
                    let k = ((centre.min(nyquist) / sr * frame_len as f32).round() as usize).min(bins - 1);
                    mel.push((k, vec![1.0]));
                }
            }
        }
        let dct = (1..=MFCC_MEANS)
            .map(|c| {
                let mut row = [0f32; MEL_BANDS];
                for (b, v) in row.iter_mut().enumerate() {
                    *v = (std::f32::consts::PI * c as f32 * (b as f32 + 0.5) / MEL_BANDS as f32).cos()
                        * (2.0 / MEL_BANDS as f32).sqrt();
                }
                row
            })
            .collect();
        let bin_of = |hz: f32| ((hz / sr * frame_len as f32).round() as usize).min(bins - 1);
        Some(Setup {
            sample_rate: sr,
            frame_len,
            hop,
            block_len,
            window_samples: (ANALYSIS_SECONDS * sr) as u64,
            fft,
            window,
            mel,
            dct,
            low_bins: bin_of(LOW_SPLIT_HZ),
            high_bin: bin_of(HIGH_SPLIT_HZ),
            bin_hz,
        })
    }
}

/// The fixed tables for a sample rate, built once per process: planning the FFT and laying
/// out the filter bank costs about 0.1 ms, as much as analysing a short one-shot.
fn shared_setup(sample_rate: u32) -> Option<Arc<Setup>> {
    /// Distinct rates kept; a node sees a handful (44.1k, 48k, 96k...).
    const KEEP: usize = 8;
    static CACHE: Mutex<Vec<(u32, Arc<Setup>)>> = Mutex::new(Vec::new());
    let mut cache = CACHE.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((_, setup)) = cache.iter().find(|(sr, _)| *sr == sample_rate) {
        return Some(Arc::clone(setup));
    }
    let setup = Arc::new(Setup::new(sample_rate)?);
    if cache.len() == KEEP {
        cache.remove(0);
    }
    cache.push((sample_rate, Arc::clone(&setup)));
    Some(setup)
}

impl DescriptorBuilder {
    /// Prepares the analysis for a stream at `sample_rate`. `channels` is advisory: `add`
    /// mixes however many planes it is given. Sample rates outside 4 kHz..768 kHz yield a
    /// builder whose `finish` returns `None`.
    pub fn new(sample_rate: u32, channels: u16) -> DescriptorBuilder {
        let _ = channels;
        let analysis = shared_setup(sample_rate).map(|setup| {
            let frame_len = setup.frame_len;
            let fft_scratch = setup.fft.make_scratch_vec();
            let scratch_out = setup.fft.make_output_vec();
            let window_blocks = (setup.window_samples / setup.block_len as u64) as usize + 1;
            Analysis {
                started: false,
                elapsed: 0,
                frame: Vec::with_capacity(frame_len),
                scratch_in: vec![0.0; frame_len],
                power: vec![0.0; frame_len / 2 + 1],
                scratch_out,
                fft_scratch,
                prev_log_mel: None,
                flux_prev: 0.0,
                flux_prev2: 0.0,
                prev_gated: false,
                max_frame_energy: 0.0,
                sums: Sums::default(),
                zero_crossings: 0,
                last_sign: false,
                block_sum: 0.0,
                block_fill: 0,
                envelope: Vec::with_capacity(window_blocks),
                envelope_max: window_blocks,
                mono: Vec::new(),
                blocks: 0,
                peak_block: 0.0,
                last_loud_block: 0,
                setup,
            }
        });
        DescriptorBuilder { analysis }
    }

    /// Feeds one decoded packet: one slice per channel, nominally in -1..1. Channels of
    /// unequal length are truncated to the shortest; non-finite samples count as zero.
    pub fn add(&mut self, planes: &[&[f32]]) {
        let Some(a) = self.analysis.as_mut() else { return };
        let Some(len) = planes.iter().map(|p| p.len()).min() else { return };
        // Mix down into the reused mono buffer, then analyse it as one slice.
        let mut mono = std::mem::take(&mut a.mono);
        mono.clear();
        mono.resize(len, 0.0);
        for plane in planes {
            for (m, x) in mono.iter_mut().zip(&plane[..len]) {
                *m += x;
            }
        }
        let scale = 1.0 / planes.len() as f32;
        for m in &mut mono {
            let x = *m * scale;
            *m = if x.is_finite() { x.clamp(-16.0, 16.0) } else { 0.0 };
        }
        a.feed(&mono);
        a.mono = mono;
    }

    /// The descriptor, or `None` if the stream was silent (never reached -60 dBFS), shorter
    /// than 10 ms after its start, or had an unusable sample rate.
    pub fn finish(self) -> Option<Descriptor> {
        self.finish_features().map(|raw| quantise(&raw))
    }

    /// The unquantised features (for calibration and inspection); `None` as for `finish`.
    pub fn finish_features(self) -> Option<[f32; DESCRIPTOR_DIMS]> {
        let mut a = self.analysis?;
        if !a.started || (a.elapsed as f32) < MIN_SECONDS * a.setup.sample_rate {
            return None;
        }
        // Flush: the partial envelope block, and the partial frame zero-padded (only if the
        // analysis window is not yet complete and the frame holds new samples).
        if a.block_fill > 0 {
            a.end_block();
        }
        if a.elapsed <= a.setup.window_samples && (a.sums.frames == 0 || a.frame.len() > a.setup.hop) {
            a.frame.resize(a.setup.frame_len, 0.0);
            a.process_frame();
        }
        a.features()
    }
}

impl Analysis {
    /// Analyses the next run of mono samples.
    fn feed(&mut self, mut x: &[f32]) {
        if !self.started {
            let Some(start) = x.iter().position(|v| v.abs() >= START_LEVEL) else { return };
            x = &x[start..];
            self.started = true;
            self.last_sign = x[0] >= 0.0;
        }
        while !x.is_empty() {
            // One envelope block (or what is left of it) at a time.
            let take = (self.setup.block_len - self.block_fill).min(x.len());
            let (head, rest) = x.split_at(take);
            self.block_sum += sum_squares(head);
            self.block_fill += take;
            let in_window = self.setup.window_samples.saturating_sub(self.elapsed);
            self.elapsed += take as u64;
            if in_window > 0 {
                let w = &head[..take.min(usize::try_from(in_window).unwrap_or(usize::MAX))];
                self.window_samples(w);
            }
            if self.block_fill == self.setup.block_len {
                self.end_block();
            }
            x = rest;
        }
    }

    /// Zero crossings and framing for samples inside the analysis window.
    fn window_samples(&mut self, mut w: &[f32]) {
        if let Some(&first) = w.first() {
            let crossings = w.windows(2).filter(|p| (p[0] >= 0.0) != (p[1] >= 0.0)).count();
            self.zero_crossings += (crossings + usize::from((first >= 0.0) != self.last_sign)) as u64;
            self.last_sign = w[w.len() - 1] >= 0.0;
        }
        while !w.is_empty() {
            let n = (self.setup.frame_len - self.frame.len()).min(w.len());
            self.frame.extend_from_slice(&w[..n]);
            w = &w[n..];
            if self.frame.len() == self.setup.frame_len {
                self.process_frame();
                let hop = self.setup.hop;
                self.frame.drain(..hop);
            }
        }
    }

    fn end_block(&mut self) {
        let ms = self.block_sum / self.block_fill.max(1) as f32;
        self.block_sum = 0.0;
        self.block_fill = 0;
        if self.envelope.len() < self.envelope_max {
            self.envelope.push(ms);
        }
        self.blocks += 1;
        if ms > self.peak_block {
            self.peak_block = ms;
        }
        if ms > self.peak_block * 1e-6 {
            self.last_loud_block = self.blocks;
        }
    }

    /// Analyses `self.frame` (exactly `frame_len` samples).
    fn process_frame(&mut self) {
        let s = &self.setup;
        for ((o, x), w) in self.scratch_in.iter_mut().zip(&self.frame).zip(&s.window) {
            *o = x * w;
        }
        if s.fft
            .process_with_scratch(&mut self.scratch_in, &mut self.scratch_out, &mut self.fft_scratch)
            .is_err()
        {
            return;
        }
        let mut energy = 0f32;
        for (p, c) in self.power.iter_mut().zip(&self.scratch_out) {
            *p = c.norm_sqr();
            energy += *p;
        }
        self.sums.frames += 1;
        if energy <= 0.0 || !energy.is_finite() {
            return;
        }
        let floor = energy * RELATIVE_FLOOR;
        let mut log_mel = [0f32; MEL_BANDS];
        for (lm, (first, weights)) in log_mel.iter_mut().zip(&s.mel) {
            let band: f32 = weights.iter().zip(&self.power[*first..]).map(|(w, p)| w * p).sum();
            *lm = 10.0 * (band + floor).log10();
        }
        // Cepstrum of the log-mel spectrum.
        let mut mfcc = [0f32; MFCC_MEANS];
        for (m, row) in mfcc.iter_mut().zip(&s.dct) {
            *m = row.iter().zip(&log_mel).map(|(r, l)| r * l).sum();
        }
        // Centroid, rolloff, flatness, band ratios.
        let mut moment = 0f32;
        for (p, f) in self.power.iter().zip(&s.bin_hz) {
            moment += p * f;
        }
        let centroid = moment / energy;
        let target = 0.85 * energy;
        let mut acc = 0f32;
        let mut rolloff = s.bin_hz[s.bin_hz.len() - 1];
        for (p, f) in self.power.iter().zip(&s.bin_hz) {
            acc += p;
            if acc >= target {
                rolloff = *f;
                break;
            }
        }
        // Flatness over the mel bands (geometric over arithmetic mean of band densities): the
        // logs are already there, and 40 bands weigh the spectrum perceptually.
        let log_mean = log_mel.iter().sum::<f32>() / MEL_BANDS as f32;
        let lin_mean = log_mel.iter().map(|l| 10f32.powf(l / 10.0)).sum::<f32>() / MEL_BANDS as f32;
        let flatness_db = f64::from(log_mean - 10.0 * lin_mean.log10());
        let low: f32 = self.power[..s.low_bins].iter().sum();
        let high: f32 = self.power[s.high_bin..].iter().sum();

        // Onsets: mean positive log-mel rise, local maximum, gated to loud frames.
        if energy > self.max_frame_energy {
            self.max_frame_energy = energy;
        }
        let flux = match &self.prev_log_mel {
            Some(prev) => {
                log_mel.iter().zip(prev).map(|(l, p)| (l - p).max(0.0)).sum::<f32>() / MEL_BANDS as f32
            }
            None => f32::INFINITY,
        };
        let gated = energy >= self.max_frame_energy * ONSET_GATE;
        // The previous frame is an onset if it beat both neighbours.
        if self.prev_gated
            && self.flux_prev > ONSET_FLUX_DB
            && self.flux_prev > self.flux_prev2
            && self.flux_prev >= flux
        {
            self.sums.onsets += 1;
        }
        self.flux_prev2 = self.flux_prev;
        self.flux_prev = flux;
        self.prev_gated = gated;
        self.prev_log_mel = Some(log_mel);

        let w = f64::from(energy.sqrt());
        let sums = &mut self.sums;
        sums.weight += w;
        for (i, &m) in mfcc.iter().enumerate() {
            sums.mfcc[i] += w * f64::from(m);
            if i < MFCC_SPREADS {
                sums.mfcc_sq[i] += w * f64::from(m) * f64::from(m);
            }
        }
        let lc = f64::from((centroid.max(1.0)).ln());
        sums.log_centroid += w * lc;
        sums.log_centroid_sq += w * lc * lc;
        sums.log_rolloff += w * f64::from(rolloff.max(1.0).ln());
        sums.flatness_db += w * flatness_db;
        sums.energy += f64::from(energy);
        sums.low_energy += f64::from(low);
        sums.high_energy += f64::from(high);
    }

    fn features(&self) -> Option<[f32; DESCRIPTOR_DIMS]> {
        let s = &self.sums;
        if s.weight <= 0.0 || s.energy <= 0.0 {
            return None;
        }
        let mut out = [0f32; DESCRIPTOR_DIMS];
        let mean = |x: f64| x / s.weight;
        let spread = |sum: f64, sq: f64| (sq / s.weight - (sum / s.weight).powi(2)).max(0.0).sqrt();
        for (o, &sum) in out.iter_mut().zip(&s.mfcc) {
            *o = mean(sum) as f32;
        }
        for (o, (&sum, &sq)) in out[MFCC_MEANS..].iter_mut().zip(s.mfcc.iter().zip(&s.mfcc_sq)) {
            *o = spread(sum, sq) as f32;
        }
        let mut d = MFCC_MEANS + MFCC_SPREADS;
        let mut put = |v: f64| {
            out[d] = v as f32;
            d += 1;
        };
        put(mean(s.log_centroid));
        put(spread(s.log_centroid, s.log_centroid_sq));
        put(mean(s.log_rolloff));
        put(mean(s.flatness_db));
        let analysed = self.elapsed.min(self.setup.window_samples).max(1) as f64;
        let sr = f64::from(self.setup.sample_rate);
        // Zero crossings per second, log.
        put((self.zero_crossings as f64 * sr / analysed + 1.0).ln());
        put(10.0 * ((s.low_energy + 1e-9 * s.energy) / s.energy).log10());
        put(10.0 * ((s.high_energy + 1e-9 * s.energy) / s.energy).log10());
        // Envelope timing (seconds, log with a small offset so very short values stay finite).
        let block_s = self.setup.block_len as f64 / sr;
        let env = &self.envelope;
        let (peak_i, peak) =
            env.iter().enumerate().fold((0, 0f32), |best, (i, &v)| if v > best.1 { (i, v) } else { best });
        let attack = (peak_i as f64 + 0.5) * block_s;
        let decay_blocks = env[peak_i..].iter().position(|&v| v < peak * 0.01).unwrap_or(env.len() - peak_i);
        let decay = decay_blocks as f64 * block_s;
        let total: f64 = env.iter().map(|&v| f64::from(v)).sum();
        let centroid_t = if total > 0.0 {
            env.iter().enumerate().map(|(i, &v)| (i as f64 + 0.5) * f64::from(v)).sum::<f64>() / total
                * block_s
        } else {
            0.0
        };
        put((attack + 0.001).ln());
        put((decay + 0.005).ln());
        put((centroid_t + 0.005).ln());
        // Effective duration over the whole stream: until the last block within 60 dB of peak.
        put((self.last_loud_block as f64 * block_s + 0.005).ln());
        // Onsets per analysed second (the first frame counts as one).
        let onsets = f64::from(s.onsets.max(1));
        put((onsets * sr / analysed).ln_1p());
        debug_assert_eq!(d, DESCRIPTOR_DIMS);
        if out.iter().all(|v| v.is_finite()) { Some(out) } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn describe(sr: u32, planes: &[Vec<f32>], packet: usize) -> Option<Descriptor> {
        let mut b = DescriptorBuilder::new(sr, planes.len() as u16);
        let len = planes.iter().map(Vec::len).min().unwrap_or(0);
        let mut i = 0;
        while i < len {
            let end = (i + packet).min(len);
            let slices: Vec<&[f32]> = planes.iter().map(|p| &p[i..end]).collect();
            b.add(&slices);
            i = end;
        }
        b.finish()
    }

    /// A decaying noisy tone: a crude synthetic drum hit.
    fn hit(sr: u32, freq: f32, noise: f32, decay_s: f32, seconds: f32) -> Vec<f32> {
        let mut state = 0x1234_5678u32;
        (0..(sr as f32 * seconds) as usize)
            .map(|i| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let n = state as f32 / u32::MAX as f32 * 2.0 - 1.0;
                let t = i as f32 / sr as f32;
                let tone = (2.0 * std::f32::consts::PI * freq * t).sin();
                0.8 * (-t / decay_s).exp() * ((1.0 - noise) * tone + noise * n)
            })
            .collect()
    }

    #[test]
    fn silence_and_too_short_give_none() {
        assert_eq!(describe(44_100, &[vec![0.0; 44_100]], 1024), None);
        assert_eq!(describe(44_100, &[vec![1e-4; 44_100]], 1024), None);
        assert_eq!(describe(44_100, &[vec![], vec![]], 1024), None);
        assert_eq!(DescriptorBuilder::new(44_100, 1).finish(), None);
        assert_eq!(describe(44_100, &[vec![0.5; 100]], 1024), None);
    }

    #[test]
    fn deterministic_and_independent_of_packet_size_and_gain() {
        let x = hit(44_100, 60.0, 0.1, 0.2, 1.0);
        let a = describe(44_100, std::slice::from_ref(&x), 1152).expect("descriptor");
        assert_eq!(Some(a), describe(44_100, std::slice::from_ref(&x), 1152));
        assert_eq!(Some(a), describe(44_100, std::slice::from_ref(&x), 37));
        let quiet: Vec<f32> = x.iter().map(|v| v * 0.25).collect();
        let b = describe(44_100, &[quiet], 4096).expect("descriptor");
        assert!(a.distance(&b) < 200, "gain changed the descriptor by {}", a.distance(&b));
        // Leading silence is skipped.
        let mut padded = vec![0.0; 10_000];
        padded.extend_from_slice(&x);
        let c = describe(44_100, &[padded], 1024).expect("descriptor");
        assert!(a.distance(&c) < 200, "leading silence changed the descriptor by {}", a.distance(&c));
    }

    #[test]
    fn kick_like_is_nearer_kick_like_than_hat_like() {
        let kick_a = describe(44_100, &[hit(44_100, 55.0, 0.05, 0.25, 0.8)], 1024).expect("a");
        let kick_b = describe(48_000, &[hit(48_000, 65.0, 0.1, 0.3, 0.9)], 1024).expect("b");
        let hat = describe(44_100, &[hit(44_100, 8000.0, 0.95, 0.05, 0.3)], 1024).expect("hat");
        assert!(kick_a.distance(&kick_b) < kick_a.distance(&hat));
    }

    #[test]
    fn bad_input_does_not_panic() {
        let weird = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1e30, -1e30, 0.5, -0.5];
        let long: Vec<f32> = weird.iter().cycle().take(50_000).copied().collect();
        let _ = describe(44_100, std::slice::from_ref(&long), 999);
        // Unequal channel lengths, zero channels, odd sample rates.
        let mut b = DescriptorBuilder::new(44_100, 2);
        b.add(&[&long[..100], &long[..50]]);
        b.add(&[]);
        let _ = b.finish();
        for sr in [0, 1, 3_999, 8_000, 11_025, 192_000, 768_000, u32::MAX] {
            let _ = describe(sr, &[hit(8_000, 440.0, 0.5, 0.1, 0.5)], 512);
        }
        let mut b = DescriptorBuilder::new(0, 0);
        b.add(&[&long]);
        assert_eq!(b.finish(), None);
    }
}
