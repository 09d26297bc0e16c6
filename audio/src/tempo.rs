//! Streaming tempo (BPM) estimation for loops.
//!
//! The detector never holds audio. Each packet is mixed to mono, box-decimated to roughly
//! 11 kHz and cut into short overlapping frames whose log-compressed magnitude spectra give a
//! spectral-flux onset envelope (Bello et al., "A Tutorial on Onset Detection in Music
//! Signals", 2005; log compression after Klapuri 1999). Only that envelope (about 170 values
//! a second, capped at [`MAX_ENVELOPE_SECONDS`]) is kept.
//!
//! [`TempoDetector::finish`] autocorrelates the envelope and scores every candidate beat
//! period by the mean autocorrelation at its first few multiples (a comb, as in Scheirer,
//! "Tempo and beat analysis of acoustic musical signals", 1998), weighted by a log-normal
//! tempo prior (Ellis, "Beat Tracking by Dynamic Programming", 2007). Half and double tempo
//! are then arbitrated by how much of the envelope's periodicity the half-period pulse
//! explains, the winner is refined on a fine grid using many multiples, and finally, because
//! sample-pack loops are cut to a whole number of bars, it is snapped to the nearest tempo
//! that makes the file a whole number of bars when that is a very small move.
//!
//! The result comes with a confidence in `0..=1`; below [`MIN_CONFIDENCE`] no tempo is
//! reported, because a wrong BPM in an index is worse than an empty field.

use super::spectrum::Spectrum;

/// Files shorter than this carry too few beats for a tempo: one-shots, mostly.
pub const MIN_DURATION_SECONDS: f32 = 1.5;
/// Estimates whose confidence is below this are withheld.
pub const MIN_CONFIDENCE: f32 = 0.2;
/// How much onset envelope is kept; later audio is only counted for its duration.
pub const MAX_ENVELOPE_SECONDS: f32 = 120.0;
/// Slowest and fastest tempo considered, in BPM.
const MIN_BPM: f32 = 60.0;
const MAX_BPM: f32 = 200.0;
/// Centre (BPM) and width (octaves) of the log-normal tempo prior.
const PRIOR_CENTRE_BPM: f32 = 120.0;
const PRIOR_WIDTH_OCTAVES: f32 = 1.0;
/// Files up to this long are treated as loops: circular analysis and the whole-bar prior.
const LOOP_MAX_SECONDS: f32 = 35.0;
/// Score factor for a loop's candidate tempos that make it a whole number of bars.
const LOOP_BONUS: f32 = 1.5;
/// How close (relative) a loop must be to whole bars for the bonus and the final snap.
const BAR_TOLERANCE: f32 = 0.015;
/// The internal sample rate the input is decimated towards.
const TARGET_RATE: u32 = 11_025;

/// A detected tempo.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TempoEstimate {
    /// Beats per minute.
    pub bpm: f32,
    /// How sure the detector is, `0..=1`.
    pub confidence: f32,
}

/// Streaming tempo detector: feed decoded planes with [`TempoDetector::add`], then call
/// [`TempoDetector::finish`].
pub struct TempoDetector {
    sample_rate: u32,
    channels: usize,
    /// Input frames averaged into one internal sample.
    decimation: usize,
    /// Running sum and count for the box decimator.
    acc: f32,
    acc_len: usize,
    /// Internal-rate mono samples not yet consumed by a full analysis frame.
    pending: Vec<f32>,
    hop: usize,
    spectrum: Spectrum,
    /// The first frame's worth of internal samples, appended at the end so the envelope of a
    /// loop wraps around seamlessly (bounded: one frame).
    head: Vec<f32>,
    /// Log-compressed magnitudes of the previous frame.
    prev: Vec<f32>,
    has_prev: bool,
    /// The onset envelope, one value per hop.
    envelope: Vec<f32>,
    max_envelope: usize,
    /// Input frames seen, for the duration.
    total_frames: u64,
}

impl TempoDetector {
    /// A detector for audio at `sample_rate` with `channels` planes per packet.
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        let sample_rate = sample_rate.max(1);
        let decimation = ((sample_rate as f32 / TARGET_RATE as f32).round() as usize).max(1);
        let internal_rate = sample_rate as f32 / decimation as f32;
        let frame_len = if internal_rate >= 9000.0 { 512 } else { 256 };
        let hop = frame_len / 8;
        let spectrum = Spectrum::new(frame_len);
        let fps = internal_rate / hop as f32;
        Self {
            sample_rate,
            channels: usize::from(channels.max(1)),
            decimation,
            acc: 0.0,
            acc_len: 0,
            pending: Vec::with_capacity(frame_len * 4),
            head: Vec::with_capacity(frame_len),
            hop,
            prev: vec![0.0; spectrum.bins()],
            spectrum,
            has_prev: false,
            envelope: Vec::new(),
            max_envelope: (MAX_ENVELOPE_SECONDS * fps) as usize,
            total_frames: 0,
        }
    }

    /// Envelope values per second.
    fn fps(&self) -> f32 {
        self.sample_rate as f32 / self.decimation as f32 / self.hop as f32
    }

    /// Feed one decoded packet: one slice per channel, all of the same length. Extra planes
    /// beyond the declared channel count are ignored; missing ones are treated as absent.
    pub fn add(&mut self, planes: &[&[f32]]) {
        let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
        self.total_frames += frames as u64;
        if self.envelope.len() >= self.max_envelope || planes.is_empty() {
            return;
        }
        let used = &planes[..planes.len().min(self.channels)];
        let gain = 1.0 / (used.len() * self.decimation) as f32;
        for i in 0..frames {
            for plane in used {
                self.acc += plane[i];
            }
            self.acc_len += 1;
            if self.acc_len == self.decimation {
                if self.head.len() < self.spectrum.frame_len() {
                    self.head.push(self.acc * gain);
                }
                self.pending.push(self.acc * gain);
                self.acc = 0.0;
                self.acc_len = 0;
            }
        }
        self.drain_frames();
    }

    /// Analyse every complete frame in `pending`.
    fn drain_frames(&mut self) {
        let frame_len = self.spectrum.frame_len();
        let mut start = 0;
        while start + frame_len <= self.pending.len() && self.envelope.len() < self.max_envelope {
            let Some(bins) = self.spectrum.transform(&self.pending[start..start + frame_len]) else {
                return;
            };
            let mut flux = 0.0;
            for (prev, bin) in self.prev.iter_mut().zip(bins) {
                let mag = (1.0 + 100.0 * bin.norm()).ln();
                flux += (mag - *prev).max(0.0);
                *prev = mag;
            }
            if self.has_prev {
                self.envelope.push(flux);
            }
            self.has_prev = true;
            start += self.hop;
        }
        self.pending.drain(..start.min(self.pending.len()));
    }

    /// The tempo of everything fed so far, or `None` when the file is too short, has no
    /// steady pulse, or the estimate is not confident enough.
    pub fn finish(mut self) -> Option<TempoEstimate> {
        let duration = self.total_frames as f32 / self.sample_rate as f32;
        if duration < MIN_DURATION_SECONDS {
            return None;
        }
        // Wrap around: the frames straddling the end see the file's start, as when looping.
        let head = std::mem::take(&mut self.head);
        self.pending.extend_from_slice(&head);
        self.drain_frames();
        let fps = self.fps();
        estimate(&self.envelope, fps, duration)
    }
}

/// Tempo from an onset envelope sampled at `fps`, for a file lasting `duration` seconds.
fn estimate(envelope: &[f32], fps: f32, duration: f32) -> Option<TempoEstimate> {
    let onsets = detrend(envelope, (0.4 * fps) as usize);
    let n = onsets.len();
    let is_loop = duration <= LOOP_MAX_SECONDS;
    // A loop is analysed as circular (it is meant to repeat), which makes lags up to its whole
    // length usable; the lag of the whole length itself says nothing and is excluded. Longer
    // material uses an ordinary autocorrelation over at most half its length.
    let (acf, usable) = if is_loop {
        (circular_autocorrelation(&onsets), n.saturating_sub(3))
    } else {
        let max_lag = (n / 2).min((8.0 * fps) as usize);
        (autocorrelation(&onsets, max_lag), max_lag.saturating_sub(2))
    };
    // The slowest candidate's period must fit in the usable lags at least once.
    if usable < (60.0 / MIN_BPM * fps) as usize {
        return None;
    }
    let acf = &acf[..usable + 2];
    let energy = acf[0];
    if energy <= f32::EPSILON {
        return None;
    }
    // Level an uncorrelated envelope would reach at any lag: a one-shot sits near it.
    let mean = onsets.iter().sum::<f32>() / n as f32;
    let floor = (mean * mean / energy).min(0.99);
    let norm: Vec<f32> = acf.iter().map(|r| ((r / energy - floor) / (1.0 - floor)).max(0.0)).collect();

    // Coarse search on a log grid (0.5 % steps), tolerant of ±1 lag.
    let steps = ((MAX_BPM / MIN_BPM).ln() / 0.005) as usize;
    let mut best: Option<(f32, f32)> = None;
    for i in 0..=steps {
        let bpm = MIN_BPM * (0.005 * i as f32).exp();
        let Some(s) = comb(&norm, 60.0 * fps / bpm, 4, true) else { continue };
        let mut score = s * prior(bpm);
        if is_loop && whole_bars(bpm, duration).is_some() {
            score *= LOOP_BONUS;
        }
        if best.is_none_or(|(_, b)| score > b) {
            best = Some((bpm, score));
        }
    }
    let (mut bpm, _) = best?;

    // Octave arbitration: prefer double tempo when the half-period pulse is nearly as
    // periodic as the beat itself and the faster tempo is still plausible.
    let period = 60.0 * fps / bpm;
    let here = comb(&norm, period, 4, true).unwrap_or(0.0);
    let half = comb(&norm, period / 2.0, 8, true).unwrap_or(0.0);
    if bpm * 2.0 <= MAX_BPM && half * prior(bpm * 2.0) > 0.9 * here * prior(bpm) {
        bpm *= 2.0;
    }

    // Refinement on a fine grid (0.05 % steps within ±2 %) with as many multiples as fit.
    let mut refined = (bpm, comb(&norm, 60.0 * fps / bpm, 16, false).unwrap_or(0.0));
    for i in -40..=40 {
        let b = bpm * (1.0 + 0.0005 * i as f32);
        if let Some(s) = comb(&norm, 60.0 * fps / b, 16, false)
            && s > refined.1
        {
            refined = (b, s);
        }
    }
    let (mut bpm, _) = refined;
    let confidence = comb(&norm, 60.0 * fps / bpm, 4, true).unwrap_or(0.0).clamp(0.0, 1.0);

    // Loops are cut to whole bars: snap when the file is that close to a whole number of bars.
    if is_loop && let Some(snapped) = whole_bars(bpm, duration) {
        bpm = snapped;
    }
    (confidence >= MIN_CONFIDENCE).then_some(TempoEstimate { bpm, confidence })
}

/// When `duration` is within [`BAR_TOLERANCE`] of 1, 2, 4, 8, 16 or 32 bars of 4/4 at `bpm`,
/// the exact tempo that makes it so.
fn whole_bars(bpm: f32, duration: f32) -> Option<f32> {
    let bars = bpm * duration / 240.0;
    let rounded = 2f32.powf(bars.max(1.0).log2().round()).min(32.0);
    let exact = rounded * 240.0 / duration;
    ((exact / bpm - 1.0).abs() <= BAR_TOLERANCE).then_some(exact)
}

/// Log-normal tempo prior, 1 at [`PRIOR_CENTRE_BPM`].
fn prior(bpm: f32) -> f32 {
    let octaves = (bpm / PRIOR_CENTRE_BPM).log2() / PRIOR_WIDTH_OCTAVES;
    (-0.5 * octaves * octaves).exp()
}

/// Mean normalised autocorrelation at the first `multiples` multiples of `period` (in
/// envelope frames) that fit. With `tolerant`, each multiple takes the best value within one
/// frame, which suits a coarse grid; otherwise values are linearly interpolated.
fn comb(acf: &[f32], period: f32, multiples: usize, tolerant: bool) -> Option<f32> {
    let last = acf.len().checked_sub(2)? as f32;
    let mut sum = 0.0;
    let mut used = 0;
    for k in 1..=multiples {
        let lag = period * k as f32;
        if lag > last || lag < 1.0 {
            break;
        }
        let i = lag.floor() as usize;
        let frac = lag - i as f32;
        let value = if tolerant {
            let lo = i.saturating_sub(1);
            acf[lo..=i + 1].iter().copied().fold(0.0, f32::max)
        } else {
            acf[i] * (1.0 - frac) + acf[i + 1] * frac
        };
        sum += value;
        used += 1;
    }
    (used > 0).then(|| sum / used as f32)
}

/// Subtract a centred moving average of `width` frames, keep the positive part and smooth
/// lightly so that autocorrelation peaks are wider than one frame.
fn detrend(envelope: &[f32], width: usize) -> Vec<f32> {
    let n = envelope.len();
    let half = width.max(2) / 2;
    let mut prefix = Vec::with_capacity(n + 1);
    prefix.push(0.0f64);
    for &v in envelope {
        let last = prefix.last().copied().unwrap_or(0.0);
        prefix.push(last + f64::from(v));
    }
    let rectified: Vec<f32> = (0..n)
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(n);
            let local = (prefix[hi] - prefix[lo]) / (hi - lo) as f64;
            (envelope[i] - local as f32).max(0.0)
        })
        .collect();
    (0..n)
        .map(|i| {
            let before = rectified[i.saturating_sub(1)];
            let after = rectified[(i + 1).min(n.saturating_sub(1))];
            0.25 * before + 0.5 * rectified[i] + 0.25 * after
        })
        .collect()
}

/// Circular autocorrelation for lags `0..=n + 1` (lags wrap modulo `n`).
fn circular_autocorrelation(x: &[f32]) -> Vec<f32> {
    let n = x.len();
    (0..n + 2)
        .map(|lag| {
            let sum: f32 = x.iter().enumerate().map(|(i, a)| a * x[(i + lag) % n]).sum();
            sum / n as f32
        })
        .collect()
}

/// Unbiased autocorrelation for lags `0..=max_lag`.
fn autocorrelation(x: &[f32], max_lag: usize) -> Vec<f32> {
    let n = x.len();
    (0..=max_lag.min(n.saturating_sub(1)))
        .map(|lag| {
            let sum: f32 = x[..n - lag].iter().zip(&x[lag..]).map(|(a, b)| a * b).sum();
            sum / (n - lag) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A click track: short decaying noise bursts every beat.
    fn clicks(bpm: f32, seconds: f32, rate: u32) -> Vec<f32> {
        let len = (seconds * rate as f32) as usize;
        let period = (60.0 / bpm * rate as f32) as usize;
        let mut seed = 12345u32;
        (0..len)
            .map(|i| {
                let t = i % period;
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                let noise = (seed >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
                noise * (-(t as f32) / (0.01 * rate as f32)).exp()
            })
            .collect()
    }

    fn run(samples: &[f32], rate: u32) -> Option<TempoEstimate> {
        let mut detector = TempoDetector::new(rate, 2);
        for chunk in samples.chunks(1152) {
            detector.add(&[chunk, chunk]);
        }
        detector.finish()
    }

    #[test]
    fn click_track_at_120_bpm() {
        let estimate = run(&clicks(120.0, 8.0, 44_100), 44_100).expect("a tempo");
        assert!((estimate.bpm - 120.0).abs() < 1.0, "{estimate:?}");
        assert!(estimate.confidence > 0.5, "{estimate:?}");
    }

    #[test]
    fn click_track_at_174_bpm_48k() {
        let estimate = run(&clicks(174.0, 11.0, 48_000), 48_000).expect("a tempo");
        assert!((estimate.bpm / 174.0 - 1.0).abs() < 0.02, "{estimate:?}");
    }

    #[test]
    fn two_bar_loop_snaps_to_exact_tempo() {
        // Exactly two bars at 128 BPM, as a sample-pack loop would be cut.
        let estimate = run(&clicks(128.0, 2.0 * 4.0 * 60.0 / 128.0, 44_100), 44_100).expect("a tempo");
        assert!((estimate.bpm - 128.0).abs() < 0.01, "{estimate:?}");
    }

    #[test]
    fn short_file_has_no_tempo() {
        assert_eq!(run(&clicks(120.0, 1.0, 44_100), 44_100), None);
    }

    #[test]
    fn single_hit_has_no_tempo() {
        let hit = clicks(20.0, 2.9, 44_100);
        assert_eq!(run(&hit, 44_100), None);
    }

    #[test]
    fn silence_has_no_tempo() {
        assert_eq!(run(&vec![0.0; 44_100 * 4], 44_100), None);
    }
}
