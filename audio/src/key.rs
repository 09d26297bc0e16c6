//! Streaming musical key estimation (tonic and major/minor).
//!
//! The detector never holds audio. Each packet is mixed to mono, low-pass filtered and
//! decimated to roughly 11 kHz, and cut into long overlapping frames. In every frame the
//! spectral peaks between [`MIN_FREQ`] and [`MAX_FREQ`] are located by parabolic
//! interpolation and their magnitudes added to a fine pitch-class histogram (ten bins per
//! semitone); frames whose spectrum is as flat as noise add nothing — a simplified
//! harmonic pitch class profile after Gómez, "Tonal Description of Music Audio Signals",
//! 2006. Only that histogram is kept.
//!
//! [`KeyDetector::finish`] estimates the tuning offset from the histogram, folds it to twelve
//! pitch classes and removes the share that overtones of other pitch classes are expected to
//! have put there: the third harmonic of every note lands a fifth above it and the fifth
//! harmonic a major third above it, which otherwise biases estimates towards the dominant and
//! towards major. Each peak adds the square root of its magnitude, which evens out loud and
//! quiet partials. The result is correlated with the 24 rotations of Sha'ath's major and
//! minor key profiles, which he derived from recordings of popular and electronic music for
//! KeyFinder (Sha'ath, "Estimation of Key in Digital Music Recordings", MSc thesis, Birkbeck
//! College, 2011), in the correlation method of Krumhansl–Schmuckler. Profiles, peak weight
//! and overtone shares were chosen together on the labelled set's tune half when it held 68
//! keys: they put the estimate right on 53, where Krumhansl–Kessler's probe-tone profiles
//! with magnitudes put it right on 44. The band and the peak floor were chosen later, on
//! the tune half's 93 keys (`docs/BENCHMARKS.md`, "The key detector's band"). The
//! confidence combines how well the best key fits ([`KeyEstimate::fit`]) with how far ahead
//! of the runner-up it is; below [`MIN_CONFIDENCE`] no key is reported.

use super::spectrum::Spectrum;
use super::tonality::{Tonality, TonalityTracker};

/// Estimates whose confidence is below this are withheld.
pub const MIN_CONFIDENCE: f32 = 0.2;
/// The lowest detector confidence at which a one-shot gets a key: a single note
/// has no mode, and a drum hit has no key, so one-shots need more certainty.
pub const ONE_SHOT_KEY_CONFIDENCE: f32 = 0.5;
/// Lowest and highest spectral peak frequency (Hz) that counts towards the chroma.
/// Below 100 Hz a dense mix holds mostly kick drums and the bass's lowest notes, whose
/// pitch is least clear; up to 4 kHz a melody's upper partials count too. Chosen on the
/// labelled set's tune half: the estimate is published and right on 73 of its 93 keys,
/// against 64 with the band of 60 Hz to 2.1 kHz; 90–110 Hz and 3–4.4 kHz give 70–74.
pub const MIN_FREQ: f32 = 100.0;
pub const MAX_FREQ: f32 = 4_000.0;
/// The internal sample rate the input is decimated towards.
const TARGET_RATE: u32 = 11_025;
/// How much of a file the harmonicity test looks at.
const TONALITY_SECONDS: f32 = 60.0;
/// Histogram bins per semitone.
const RESOLUTION: usize = 10;
/// Total histogram bins over one octave.
const BINS: usize = 12 * RESOLUTION;
/// Peaks weaker than this fraction of the frame's strongest peak are ignored (0.04–0.1
/// give 72–73 of the tune half's 93 keys with the band above, 0.02 gives 65).
const PEAK_FLOOR: f32 = 0.05;
/// Frames whose power spectrum between [`MIN_FREQ`] and [`MAX_FREQ`] is flatter than
/// this (geometric over arithmetic mean; white noise is about 0.56) are noise and add
/// nothing, which keeps most claps and hi-hats out of key searches without costing
/// the labelled set's key accuracy; a lower threshold loses labelled keys. Crashes,
/// rides and snares mostly keep theirs: their partials are peaks, not noise.
/// Figures: `docs/BENCHMARKS.md`, "Accuracy" (drums and percussion given a key).
const FLATNESS_MAX: f64 = 0.1;

/// Share of a note's chroma taken off the pitch class a fifth above it (its 3rd and 6th
/// harmonics) and a major third above it (its 5th). Chosen with the profiles on the
/// labelled set's tune half (`docs/BENCHMARKS.md`, "Tempo, key and the whole analysis"):
/// 0.15 each put the estimate right on 53 of its 68 keys (0.1 each: 52; 0.15 and 0.3: 51).
const FIFTH_OVERTONE: f32 = 0.15;
const THIRD_OVERTONE: f32 = 0.15;
/// Sha'ath's key profiles (KeyFinder), tonic first.
const MAJOR_PROFILE: [f32; 12] =
    [7.239, 3.5035, 3.5845, 2.8451, 5.819, 4.5587, 2.4478, 6.9947, 3.3911, 4.5561, 4.0739, 4.4593];
const MINOR_PROFILE: [f32; 12] =
    [7.0026, 3.1436, 4.359, 5.4042, 3.6723, 4.0897, 3.9079, 6.1996, 3.6342, 2.8724, 5.3547, 3.8324];

/// A detected key.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyEstimate {
    /// Pitch class of the tonic: 0 = C, 1 = C♯, … 11 = B.
    pub tonic: u8,
    /// Minor mode when true, major otherwise.
    pub minor: bool,
    /// How sure the detector is, `0..=1`.
    pub confidence: f32,
    /// How well the pitch classes fit this key: their correlation with its profile,
    /// `-1..=1`. Music fits well even where drums bury its steady pitch.
    pub fit: f32,
}

impl KeyEstimate {
    /// A short name such as `C`, `F#m`.
    pub fn name(&self) -> String {
        const NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];
        let tonic = NAMES[usize::from(self.tonic % 12)];
        if self.minor { format!("{tonic}m") } else { tonic.to_string() }
    }
}

/// Streaming key detector: feed decoded planes with [`KeyDetector::add`], then call
/// [`KeyDetector::finish`].
pub struct KeyDetector {
    channels: usize,
    internal_rate: f32,
    decimation: usize,
    /// Low-pass FIR taps applied before decimation.
    taps: Vec<f32>,
    /// Doubled ring of the last `taps.len()` mono samples, so a window is one contiguous slice.
    history: Vec<f32>,
    position: usize,
    /// Input samples since the last decimated output.
    phase: usize,
    /// Internal-rate samples not yet consumed by a full frame.
    pending: Vec<f32>,
    hop: usize,
    frames_done: usize,
    spectrum: Spectrum,
    magnitudes: Vec<f32>,
    /// The accumulated fine pitch-class histogram; bin 0 is centred on C.
    histogram: [f64; BINS],
    /// The harmonicity test and pitch tracker, fed the same decimated signal.
    tonality: TonalityTracker,
}

impl KeyDetector {
    /// A detector for audio at `sample_rate` with `channels` planes per packet.
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        let sample_rate = sample_rate.max(1);
        let decimation = ((sample_rate as f32 / TARGET_RATE as f32).round() as usize).max(1);
        let internal_rate = sample_rate as f32 / decimation as f32;
        let taps = lowpass(decimation);
        let frame_len = if internal_rate >= 9000.0 { 4096 } else { 2048 };
        let spectrum = Spectrum::new(frame_len);
        Self {
            channels: usize::from(channels.max(1)),
            internal_rate,
            decimation,
            history: vec![0.0; 2 * taps.len()],
            taps,
            position: 0,
            phase: 0,
            pending: Vec::with_capacity(frame_len * 2),
            hop: frame_len / 2,
            frames_done: 0,
            magnitudes: vec![0.0; spectrum.bins()],
            spectrum,
            histogram: [0.0; BINS],
            tonality: TonalityTracker::new(internal_rate, TONALITY_SECONDS),
        }
    }

    /// Feed one decoded packet: one slice per channel, all of the same length.
    pub fn add(&mut self, planes: &[&[f32]]) {
        let frames = planes.iter().map(|p| p.len()).min().unwrap_or(0);
        if planes.is_empty() {
            return;
        }
        let used = &planes[..planes.len().min(self.channels)];
        let gain = 1.0 / used.len() as f32;
        let len = self.taps.len();
        for i in 0..frames {
            let mono = used.iter().map(|p| p[i]).sum::<f32>() * gain;
            self.history[self.position] = mono;
            self.history[self.position + len] = mono;
            self.position = (self.position + 1) % len;
            self.phase += 1;
            if self.phase == self.decimation {
                self.phase = 0;
                let recent = &self.history[self.position..self.position + len];
                let out: f32 = recent.iter().zip(&self.taps).map(|(x, h)| x * h).sum();
                self.pending.push(out);
                self.tonality.push(out);
            }
        }
        self.drain_frames();
    }

    /// Analyse every complete frame in `pending`.
    fn drain_frames(&mut self) {
        let frame_len = self.spectrum.frame_len();
        let mut start = 0;
        while start + frame_len <= self.pending.len() {
            self.analyse_frame(start, frame_len);
            start += self.hop;
        }
        self.pending.drain(..start.min(self.pending.len()));
    }

    /// Window and transform `len` pending samples from `start` (zero-padded to a
    /// frame), then add the spectral peaks to the histogram.
    fn analyse_frame(&mut self, start: usize, len: usize) {
        let frame_len = self.spectrum.frame_len();
        let Some(bins) = self.spectrum.transform(&self.pending[start..start + len]) else {
            return;
        };
        self.frames_done += 1;
        for (m, c) in self.magnitudes.iter_mut().zip(bins) {
            *m = c.norm();
        }
        let bin_hz = self.internal_rate / frame_len as f32;
        let lo = ((MIN_FREQ / bin_hz).floor() as usize).max(1);
        let hi = ((MAX_FREQ / bin_hz).ceil() as usize).min(self.magnitudes.len() - 2);
        let strongest = self.magnitudes[lo..=hi].iter().copied().fold(0.0, f32::max);
        if strongest <= 1e-6 {
            return;
        }
        if flatness(&self.magnitudes[lo..=hi]) > FLATNESS_MAX {
            return;
        }
        let floor = strongest * PEAK_FLOOR;
        for k in lo..=hi {
            let (a, b, c) = (self.magnitudes[k - 1], self.magnitudes[k], self.magnitudes[k + 1]);
            if b < floor || b <= a || b < c {
                continue;
            }
            // Parabolic interpolation on log magnitudes for frequency and height.
            let (la, lb, lc) = ((a + 1e-9).ln(), b.ln(), (c + 1e-9).ln());
            let denom = la - 2.0 * lb + lc;
            let offset = if denom.abs() > 1e-9 { (0.5 * (la - lc) / denom).clamp(-0.5, 0.5) } else { 0.0 };
            let height = (lb - 0.25 * (la - lc) * offset).exp();
            let freq = (k as f32 + offset) * bin_hz;
            // Semitones above C, folded to one octave (C4 = 261.63 Hz with A4 = 440 Hz).
            let semis = 12.0 * (freq / 261.625_56).log2();
            let fine = (semis * RESOLUTION as f32).round().rem_euclid(BINS as f32) as usize % BINS;
            self.histogram[fine] += f64::from(height).sqrt();
        }
    }

    /// The key of everything fed so far (`None` when there is no clear tonal content),
    /// and what the harmonicity test found. Whether the key is worth publishing is
    /// the caller's decision, made with the tonality.
    pub fn finish(mut self) -> (Option<KeyEstimate>, Tonality) {
        if self.frames_done == 0 && !self.pending.is_empty() {
            // A file shorter than one frame: analyse it zero-padded.
            let len = self.pending.len().min(self.spectrum.frame_len());
            self.analyse_frame(0, len);
        }
        (estimate(&self.histogram), self.tonality.finish())
    }
}

/// Spectral flatness of magnitudes: the geometric over the arithmetic mean of their
/// squares, from near 0 (a few peaks) to 1 (all equal).
fn flatness(magnitudes: &[f32]) -> f64 {
    let (mut log_sum, mut sum) = (0.0f64, 0.0f64);
    for &m in magnitudes {
        let power = f64::from(m) * f64::from(m) + 1e-20;
        log_sum += power.ln();
        sum += power;
    }
    let n = magnitudes.len().max(1) as f64;
    (log_sum / n).exp() / (sum / n)
}

/// Key from a fine pitch-class histogram.
fn estimate(histogram: &[f64; BINS]) -> Option<KeyEstimate> {
    let total: f64 = histogram.iter().sum();
    if total <= 1e-6 {
        return None;
    }
    // Tuning: the offset (in fine bins, within ±half a semitone) whose comb of semitone
    // centres collects the most energy.
    let half = (RESOLUTION / 2) as isize;
    let mut tuning = 0isize;
    let mut best_mass = f64::MIN;
    for shift in -half..half {
        let mass: f64 = (0..12)
            .map(|pc| {
                let centre = (pc * RESOLUTION) as isize + shift;
                (-1..=1).map(|d| histogram[(centre + d).rem_euclid(BINS as isize) as usize]).sum::<f64>()
            })
            .sum();
        if mass > best_mass {
            best_mass = mass;
            tuning = shift;
        }
    }
    // Fold to twelve pitch classes with a triangular weight around each tuned centre.
    let mut chroma = [0.0f32; 12];
    for (pc, value) in chroma.iter_mut().enumerate() {
        let centre = (pc * RESOLUTION) as isize + tuning;
        for d in -half..=half {
            let weight = 1.0 - d.unsigned_abs() as f64 / (half + 1) as f64;
            *value += (weight * histogram[(centre + d).rem_euclid(BINS as isize) as usize]) as f32;
        }
    }
    // Overtone removal: pitch class `pc` loses what the note a fifth below (`pc + 5`) and the
    // note a major third below (`pc + 8`) are expected to have contributed.
    let folded = chroma;
    for (pc, value) in chroma.iter_mut().enumerate() {
        let overtones = FIFTH_OVERTONE * folded[(pc + 5) % 12] + THIRD_OVERTONE * folded[(pc + 8) % 12];
        *value = (*value - overtones).max(0.0);
    }
    let mut scores = Vec::with_capacity(24);
    for tonic in 0..12u8 {
        for minor in [false, true] {
            let profile = if minor { &MINOR_PROFILE } else { &MAJOR_PROFILE };
            scores.push((correlation(&chroma, profile, usize::from(tonic)), tonic, minor));
        }
    }
    scores.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (best, tonic, minor) = scores[0];
    let second = scores[1].0;
    let confidence = ((best - second) * 4.0 + (best - 0.5).max(0.0)).clamp(0.0, 1.0);
    (confidence >= MIN_CONFIDENCE).then_some(KeyEstimate { tonic, minor, confidence, fit: best })
}

/// Pearson correlation between `chroma` and `profile` rotated so its tonic sits at `tonic`.
fn correlation(chroma: &[f32; 12], profile: &[f32; 12], tonic: usize) -> f32 {
    let mean_c = chroma.iter().sum::<f32>() / 12.0;
    let mean_p = profile.iter().sum::<f32>() / 12.0;
    let (mut num, mut var_c, mut var_p) = (0.0, 0.0, 0.0);
    for (pc, &c) in chroma.iter().enumerate() {
        let p = profile[(pc + 12 - tonic) % 12];
        num += (c - mean_c) * (p - mean_p);
        var_c += (c - mean_c) * (c - mean_c);
        var_p += (p - mean_p) * (p - mean_p);
    }
    let denom = (var_c * var_p).sqrt();
    if denom > 0.0 { num / denom } else { 0.0 }
}

/// Windowed-sinc low-pass taps for decimation by `factor`, cut off at 0.4 of the decimated
/// rate (4.4 kHz from 44.1 kHz). The filter is short: from 44.1 kHz it is flat to about
/// 2.5 kHz and 3.7 dB down at [`MAX_FREQ`], so the highest partials count a little less,
/// and what folds back below [`MAX_FREQ`] is more than 50 dB down.
fn lowpass(factor: usize) -> Vec<f32> {
    if factor <= 1 {
        return vec![1.0];
    }
    let len = 8 * factor + 1;
    let cutoff = 0.4 / factor as f32;
    let mid = (len / 2) as f32;
    let mut taps: Vec<f32> = (0..len)
        .map(|i| {
            let x = i as f32 - mid;
            let sinc = if x == 0.0 {
                2.0 * cutoff
            } else {
                (2.0 * std::f32::consts::PI * cutoff * x).sin() / (std::f32::consts::PI * x)
            };
            let w = 0.54 - 0.46 * (2.0 * std::f32::consts::PI * i as f32 / (len - 1) as f32).cos();
            sinc * w
        })
        .collect();
    let sum: f32 = taps.iter().sum();
    for t in &mut taps {
        *t /= sum;
    }
    taps
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Noise;
    use super::*;

    /// Sum of harmonic-rich tones at the given MIDI notes.
    fn chord(notes: &[f32], seconds: f32, rate: u32) -> Vec<f32> {
        let len = (seconds * rate as f32) as usize;
        (0..len)
            .map(|i| {
                let t = i as f32 / rate as f32;
                notes
                    .iter()
                    .map(|&n| {
                        let f = 440.0 * 2f32.powf((n - 69.0) / 12.0);
                        (1..=4)
                            .map(|h| (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32)
                            .sum::<f32>()
                    })
                    .sum::<f32>()
                    * 0.1
            })
            .collect()
    }

    fn run(samples: &[f32], rate: u32) -> Option<KeyEstimate> {
        let mut detector = KeyDetector::new(rate, 1);
        for chunk in samples.chunks(1000) {
            detector.add(&[chunk]);
        }
        detector.finish().0
    }

    #[test]
    fn c_major_triad() {
        let key = run(&chord(&[48.0, 60.0, 64.0, 67.0], 3.0, 44_100), 44_100).expect("a key");
        assert_eq!((key.tonic, key.minor), (0, false), "{key:?}");
    }

    #[test]
    fn a_minor_triad_at_48k() {
        let key = run(&chord(&[45.0, 57.0, 60.0, 64.0], 3.0, 48_000), 48_000).expect("a key");
        assert_eq!((key.tonic, key.minor), (9, true), "{key:?}");
    }

    #[test]
    fn silence_has_no_key() {
        assert_eq!(run(&vec![0.0; 44_100], 44_100), None);
    }

    #[test]
    fn noise_has_no_key_and_a_chord_in_noise_keeps_its_key() {
        let mut random = Noise(0x2545_f491_4f6c_dd1d);
        let noise: Vec<f32> = (0..3 * 44_100).map(|_| 0.5 * random.uniform() as f32).collect();
        assert_eq!(run(&noise, 44_100), None);
        let chord = chord(&[45.0, 57.0, 60.0, 64.0], 3.0, 44_100);
        let mixed: Vec<f32> = chord.iter().zip(&noise).map(|(c, n)| c + 0.05 * n).collect();
        let key = run(&mixed, 44_100).expect("a key");
        assert_eq!((key.tonic, key.minor), (9, true), "{key:?}");
    }

    #[test]
    fn names() {
        assert_eq!(KeyEstimate { tonic: 6, minor: true, confidence: 1.0, fit: 0.9 }.name(), "F#m");
        assert_eq!(KeyEstimate { tonic: 0, minor: false, confidence: 1.0, fit: 0.9 }.name(), "C");
    }
}
