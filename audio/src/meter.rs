//! Streaming measurements: sample peak, EBU R128 loudness and a bounded peak/energy envelope.
//!
//! The [`Envelope`] keeps at most [`MAX_BUCKETS`] buckets whatever the length of the file.
//! Buckets start one frame wide; when they are all used, neighbours are merged pairwise and
//! the width doubles. At the end every bucket but the last covers the same number of frames,
//! at least 1/2048 of the file once it is longer than 4096 frames, which is fine enough to
//! draw [`WAVEFORM_POINTS`] points and to compare the end of a sample with the rest.

use ebur128::{EbuR128, Mode};

use super::{SILENCE_DBFS, WAVEFORM_POINTS};

/// Upper bound on envelope buckets (an even number, far above `WAVEFORM_POINTS`).
const MAX_BUCKETS: usize = 4096;

/// What the meter found, once the stream has ended.
pub(super) struct Measurements {
    pub frames: u64,
    pub peak_dbfs: f32,
    pub loudness_lufs: Option<f32>,
    pub waveform: Vec<u8>,
    pub envelope: Envelope,
}

/// Folds decoded `f32` planes into the measurements.
pub(super) struct Meter {
    sample_rate: u32,
    channels: u16,
    /// `None` when the loudness meter cannot handle the stream (more than 64 channels, a rate
    /// below 16 Hz); the loudness is then reported as unmeasurable.
    loudness: Option<EbuR128>,
    envelope: Envelope,
}

impl Meter {
    pub fn new(sample_rate: u32, channels: u16) -> Self {
        // Exact gating keeps one f64 per 100 ms block (80 bytes per second of audio, about
        // 290 KB for an hour); histogram mode would be constant-size but rounds to 0.1 LU.
        let loudness = EbuR128::new(u32::from(channels), sample_rate, Mode::I);
        Meter { sample_rate, channels, loudness: loudness.ok(), envelope: Envelope::default() }
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> u16 {
        self.channels
    }

    /// Frames added so far.
    pub fn frames(&self) -> u64 {
        self.envelope.frames
    }

    /// Adds one block of frames: one slice per channel, all of the same length.
    pub fn add(&mut self, planes: &[&[f32]]) {
        debug_assert_eq!(planes.len(), usize::from(self.channels));
        if let Some(meter) = &mut self.loudness
            && meter.add_frames_planar_f32(planes).is_err()
        {
            self.loudness = None;
        }
        self.envelope.add(planes);
    }

    pub fn finish(self) -> Measurements {
        let peak = self.envelope.peak();
        let peak_dbfs = if peak > 0.0 {
            // Clamped so that a float file holding infinities still yields a finite number.
            (20.0 * f64::from(peak).log10()).clamp(f64::from(SILENCE_DBFS), 200.0) as f32
        } else {
            SILENCE_DBFS
        };
        let loudness_lufs =
            self.loudness.and_then(|m| m.loudness_global().ok()).filter(|l| l.is_finite()).map(|l| l as f32);
        Measurements {
            frames: self.envelope.frames,
            peak_dbfs,
            loudness_lufs,
            waveform: self.envelope.waveform(),
            envelope: self.envelope,
        }
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Bucket {
    /// Highest `|sample|` over all channels.
    peak: f32,
    /// Sum of squared samples over all channels.
    energy: f64,
}

/// A bounded summary of the whole stream: peak and energy per stretch of frames.
#[derive(Debug)]
pub(super) struct Envelope {
    buckets: Vec<Bucket>,
    /// Frames per bucket (the last bucket may hold fewer).
    bucket_frames: u64,
    /// Frames in the last bucket.
    last_fill: u64,
    frames: u64,
    channels: usize,
}

impl Default for Envelope {
    fn default() -> Self {
        Envelope {
            buckets: Vec::with_capacity(MAX_BUCKETS),
            bucket_frames: 1,
            last_fill: 0,
            frames: 0,
            channels: 0,
        }
    }
}

impl Envelope {
    fn add(&mut self, planes: &[&[f32]]) {
        self.channels = planes.len();
        let len = planes.first().map_or(0, |p| p.len());
        let mut start = 0;
        while start < len {
            if self.buckets.is_empty() || self.last_fill == self.bucket_frames {
                if self.buckets.len() == MAX_BUCKETS {
                    self.merge_pairs();
                }
                self.buckets.push(Bucket::default());
                self.last_fill = 0;
            }
            let room = self.bucket_frames - self.last_fill;
            let run = (len - start).min(usize::try_from(room).unwrap_or(usize::MAX));
            let mut bucket = self.buckets.last().copied().unwrap_or_default();
            for plane in planes {
                let (peak, energy) = peak_and_energy(&plane[start..start + run]);
                bucket.peak = bucket.peak.max(peak);
                bucket.energy += energy;
            }
            if let Some(last) = self.buckets.last_mut() {
                *last = bucket;
            }
            self.last_fill += run as u64;
            self.frames += run as u64;
            start += run;
        }
    }

    /// Halves the bucket count by merging neighbours; only called when all buckets are full.
    fn merge_pairs(&mut self) {
        let merged: Vec<Bucket> = self
            .buckets
            .chunks(2)
            .map(|pair| Bucket {
                peak: pair.iter().map(|b| b.peak).fold(0.0, f32::max),
                energy: pair.iter().map(|b| b.energy).sum(),
            })
            .collect();
        self.buckets.clear();
        self.buckets.extend(merged);
        self.bucket_frames *= 2;
        self.last_fill = self.bucket_frames;
    }

    /// Highest `|sample|` of the whole stream.
    fn peak(&self) -> f32 {
        self.buckets.iter().map(|b| b.peak).fold(0.0, f32::max)
    }

    /// [`WAVEFORM_POINTS`] points: point `p` covers frames `p·n/128 .. (p+1)·n/128` (at least
    /// one frame), widened to whole buckets.
    fn waveform(&self) -> Vec<u8> {
        let n = self.frames;
        let points = WAVEFORM_POINTS as u64;
        (0..points)
            .map(|p| {
                if n == 0 {
                    return 0;
                }
                let start = p * n / points;
                let end = ((p + 1) * n / points).max(start + 1).min(n);
                let first = (start / self.bucket_frames) as usize;
                let last = (end.div_ceil(self.bucket_frames) as usize).min(self.buckets.len());
                let peak = self.buckets[first..last].iter().map(|b| b.peak).fold(0.0, f32::max);
                waveform_byte(peak)
            })
            .collect()
    }

    /// Mean square per sample of the last `tail` fraction of the stream and of the rest, as
    /// `(rest, tail)`, split at a bucket boundary. `None` when either part is empty.
    pub fn body_and_tail_power(&self, tail: f64) -> Option<(f64, f64)> {
        let n = self.frames;
        let tail_start = n - ((n as f64 * tail) as u64).min(n);
        let split = ((tail_start / self.bucket_frames) as usize).min(self.buckets.len());
        let body_frames = split as u64 * self.bucket_frames;
        let tail_frames = n - body_frames;
        if body_frames == 0 || tail_frames == 0 || self.channels == 0 {
            return None;
        }
        let samples = |frames: u64| frames as f64 * self.channels as f64;
        let body: f64 = self.buckets[..split].iter().map(|b| b.energy).sum();
        let end: f64 = self.buckets[split..].iter().map(|b| b.energy).sum();
        Some((body / samples(body_frames), end / samples(tail_frames)))
    }
}

/// Maps a linear peak to a waveform byte: 0 only for silence, 255 for full scale and above.
fn waveform_byte(peak: f32) -> u8 {
    if peak > 0.0 { (peak.min(1.0) * 255.0).round().max(1.0) as u8 } else { 0 }
}

/// Highest `|x|` and the sum of `x²` of a run of samples. Eight independent lanes so that
/// the compiler can vectorise; squares are summed in `f32` per chunk of 4096 samples and
/// carried in `f64`.
fn peak_and_energy(samples: &[f32]) -> (f32, f64) {
    const LANES: usize = 8;
    let mut peak = [0f32; LANES];
    let mut energy = 0f64;
    for block in samples.chunks(4096) {
        let mut squares = [0f32; LANES];
        let chunks = block.chunks_exact(LANES);
        let rest = chunks.remainder();
        for chunk in chunks {
            for lane in 0..LANES {
                let x = chunk[lane];
                peak[lane] = peak[lane].max(x.abs());
                squares[lane] += x * x;
            }
        }
        for &x in rest {
            peak[0] = peak[0].max(x.abs());
            squares[0] += x * x;
        }
        energy += squares.iter().map(|&s| f64::from(s)).sum::<f64>();
    }
    (peak.into_iter().fold(0.0, f32::max), energy)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(envelope: &mut Envelope, samples: &[f32], block: usize) {
        for chunk in samples.chunks(block) {
            envelope.add(&[chunk]);
        }
    }

    #[test]
    fn peak_and_energy_of_odd_lengths() {
        let samples: Vec<f32> = (0..10_003).map(|i| ((i % 7) as f32 - 3.0) / 4.0).collect();
        let (peak, energy) = peak_and_energy(&samples);
        assert_eq!(peak, 0.75);
        let expected: f64 = samples.iter().map(|&x| f64::from(x) * f64::from(x)).sum();
        assert!((energy - expected).abs() / expected < 1e-5);
        assert_eq!(peak_and_energy(&[]), (0.0, 0.0));
        assert_eq!(peak_and_energy(&[-1.0]).0, 1.0);
    }

    #[test]
    fn envelope_stays_bounded_and_exact_in_count() {
        let mut envelope = Envelope::default();
        let samples: Vec<f32> = (0..1_000_003).map(|i| (i as f32 * 0.001).sin()).collect();
        feed(&mut envelope, &samples, 1152);
        assert_eq!(envelope.frames, 1_000_003);
        assert!(envelope.buckets.len() <= MAX_BUCKETS);
        assert!(envelope.buckets.len() > MAX_BUCKETS / 2);
        let covered = (envelope.buckets.len() as u64 - 1) * envelope.bucket_frames + envelope.last_fill;
        assert_eq!(covered, 1_000_003);
        let total: f64 = envelope.buckets.iter().map(|b| b.energy).sum();
        let expected: f64 = samples.iter().map(|&x| f64::from(x * x)).sum();
        assert!((total - expected).abs() / expected < 1e-5);
    }

    #[test]
    fn waveform_is_independent_of_block_size() {
        let samples: Vec<f32> = (0..300_000).map(|i| (i % 1000) as f32 / 1000.0).collect();
        let mut a = Envelope::default();
        let mut b = Envelope::default();
        feed(&mut a, &samples, 4096);
        feed(&mut b, &samples, 577);
        assert_eq!(a.waveform(), b.waveform());
        assert_eq!(a.waveform().len(), WAVEFORM_POINTS);
    }

    #[test]
    fn waveform_marks_a_single_click() {
        let mut samples = vec![0f32; 128_000];
        samples[64_500] = -0.5;
        let mut envelope = Envelope::default();
        feed(&mut envelope, &samples, 1000);
        let waveform = envelope.waveform();
        let loud: Vec<usize> = (0..WAVEFORM_POINTS).filter(|&p| waveform[p] > 0).collect();
        assert_eq!(loud, vec![64]);
        assert_eq!(waveform[64], 128);
    }

    #[test]
    fn waveform_bytes() {
        assert_eq!(waveform_byte(0.0), 0);
        assert_eq!(waveform_byte(1e-9), 1);
        assert_eq!(waveform_byte(0.5), 128);
        assert_eq!(waveform_byte(1.0), 255);
        assert_eq!(waveform_byte(3.0), 255);
        assert_eq!(waveform_byte(f32::INFINITY), 255);
    }

    #[test]
    fn tail_power_splits_at_the_last_tenth() {
        let mut envelope = Envelope::default();
        let mut samples = vec![0.5f32; 90_000];
        samples.extend(vec![0.05f32; 10_000]);
        feed(&mut envelope, &samples, 999);
        let (body, tail) = envelope.body_and_tail_power(0.1).unwrap();
        assert!((body - 0.25).abs() < 0.01, "{body}");
        assert!((tail - 0.0025).abs() < 0.001, "{tail}");
        assert!(Envelope::default().body_and_tail_power(0.1).is_none());
    }

    #[test]
    fn meter_reports_silence_and_overflowing_floats() {
        let mut meter = Meter::new(48_000, 2);
        let silence = vec![0f32; 48_000];
        meter.add(&[&silence, &silence]);
        let m = meter.finish();
        assert_eq!(m.peak_dbfs, SILENCE_DBFS);
        assert_eq!(m.loudness_lufs, None);
        assert_eq!(m.frames, 48_000);

        let mut meter = Meter::new(48_000, 1);
        meter.add(&[&[0.0, f32::INFINITY, 0.5]]);
        let m = meter.finish();
        assert!(m.peak_dbfs.is_finite());
    }
}
