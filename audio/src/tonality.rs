//! Whether a sound has a pitch at all, and which: the harmonicity test that keeps
//! drums out of key searches, and the root note of a pitched one-shot.
//!
//! The tracker is fed the key detector's low-passed, decimated mono signal (about
//! 11 kHz) and cuts it into frames of [`FRAME_SECONDS`]. In every frame it picks the
//! spectral peaks between [`MIN_F0`] and [`MAX_FREQ`] and looks for the fundamentals
//! whose harmonic series explain them (harmonic sieve, after Duifhuis, Willems and
//! Sluyter, "Measurement of pitch in speech: an implementation of Goldstein's theory
//! of pitch perception", 1982): each peak and its subharmonics are candidates, a
//! candidate collects the power of every peak within [`HARMONIC_CENTS`] of one of its
//! first [`MAX_HARMONIC`] harmonics, and only candidates with several of their low
//! harmonics present count, or a lone partial from [`SINE_MIN_F0`] up that holds
//! [`SINE_SHARE`] of the frame's power (a nearly pure tone: celesta, ocarina, a
//! flute's top notes). Up to three fundamentals are taken in turn, each from the peaks
//! the earlier ones left, so chords are explained as well as single notes. A frame's
//! *harmonicity* is the share of its power (all bins, not just peaks) that the
//! harmonic series explain: noise (snares, hats, claps) leaves it near zero,
//! inharmonic partials (cymbals, bells of a drum kit, membranes of toms) leave most of
//! the power unexplained, and a sine-like kick's single partial lies below
//! [`SINE_MIN_F0`] and falls. A sample shorter than one frame is cut into frames a
//! quarter as long, so that a short looped wave or a blip is still seen several times.
//!
//! [`TonalityTracker::finish`] weighs every sounding frame by its power and reports
//! the share of power that sits in harmonic frames whose main fundamental holds still
//! (within [`STEADY_CENTS`] of a neighbouring frame's): the sample's *tonality*, with
//! how long those steady frames last, how far the pitch falls over the longest run of
//! them (a tom's or a kick's pitch drops as it decays, a note's holds), whether a
//! second, unrelated fundamental sounds with the first (a chord), and whether one pitch
//! class holds nearly all of them (one note). A root note is the power-weighted most
//! common semitone of the steady fundamentals; its octave is given only when the
//! fundamental partial itself is present in most of them (otherwise the pitch class is
//! sure and the octave not). `crate::is_tonal` turns these into the verdict.

use super::spectrum::Spectrum;

/// Frame length, seconds (about 5.4 Hz a bin at the internal rate).
pub const FRAME_SECONDS: f32 = 0.186;
/// Lowest fundamental considered, Hz (E1 is 41.2 Hz).
pub const MIN_F0: f32 = 38.0;
/// Highest fundamental considered, Hz (C7 is 2,093 Hz).
pub const MAX_F0: f32 = 2_200.0;
/// Highest partial frequency considered, Hz (below the decimation filter's edge).
pub const MAX_FREQ: f32 = 4_000.0;
/// Harmonics counted per fundamental.
pub const MAX_HARMONIC: usize = 16;
/// How far (cents) a peak may be from an exact harmonic to count as one.
pub const HARMONIC_CENTS: f32 = 35.0;
/// How far, in multiples of the fundamental, a peak may be from an exact harmonic.
pub const HARMONIC_SLACK: f32 = 0.04;
/// How far (cents) a frame's fundamental may be from a neighbour's to be steady.
pub const STEADY_CENTS: f32 = 40.0;
/// A frame is harmonic when its fundamentals explain at least this share of its power.
pub const HARMONIC_FRAME: f32 = 0.5;
/// Of its first eight harmonics, how many a fundamental needs present: a drum's
/// partials (a tom's membrane modes, a kick's sine) rarely line up three times.
pub const MIN_LOW_HARMONICS: u32 = 3;
/// A candidate with fewer harmonics than that still counts when they hold at least
/// this share of the frame's power on their own: a nearly pure tone has one partial.
pub const SINE_SHARE: f32 = 0.8;
/// The lowest pitch, Hz, a lone partial may give: below it a lone sine is mostly a
/// kick's or a hand drum's body. Chosen on the labelled set's tune half with
/// [`SINE_SHARE`] (`docs/BENCHMARKS.md`, "Tempo, key and the whole analysis").
pub const SINE_MIN_F0: f32 = 250.0;
/// The share of steady weight one pitch class needs for a sample to be one note.
pub const SINGLE_NOTE_SHARE: f32 = 0.85;
/// Frames quieter than this (dB below the loudest frame) are not counted.
const SOUNDING_DB: f32 = 40.0;
/// Peaks weaker than this share of the frame's strongest peak are ignored.
const PEAK_FLOOR: f32 = 0.01;
/// Peaks considered per frame, strongest first.
const MAX_PEAKS: usize = 24;
/// Fundamentals taken per frame.
const MAX_VOICES: usize = 3;
/// A sample shorter than one frame is cut into frames this many times shorter, so
/// that its pitch is still seen in several of them (a SoundFont's short looped
/// wave, a blip).
const SHORT_FRAME_DIVISOR: usize = 4;

/// What the tracker found in one sample.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tonality {
    /// Share of the sounding power in steady harmonic frames, `0..=1`.
    pub tonality: f32,
    /// Seconds of steady harmonic frames.
    pub steady_seconds: f32,
    /// Share of steady harmonic frames in which a second, unrelated fundamental is
    /// strong: chords, not single notes.
    pub polyphony: f32,
    /// The most common steady fundamental, as a MIDI note number (60 = C4), with
    /// whether the fundamental partial itself was there (the octave is sure).
    pub pitch: Option<(u8, bool)>,
    /// Whether one pitch class holds at least [`SINGLE_NOTE_SHARE`] of the steady
    /// frames' weight: one note, held or repeated, rather than a line or chords.
    pub single_note: bool,
    /// How far, semitones, the pitch falls over the longest run of steady frames (a
    /// drum's pitch drops as it decays; a note's holds).
    pub glide: f32,
    /// Seconds from the loudest frame until the power is 30 dB lower (the whole rest
    /// of the sample when it never is).
    pub decay_seconds: f32,
    /// Share of the sounding frames that are steady: near 1 for a short note that is
    /// all pitch, lower for a hit whose pitch sits under noise.
    pub steady_share: f32,
}

/// One analysed frame.
#[derive(Clone, Copy, Debug)]
struct Frame {
    power: f32,
    harmonicity: f32,
    /// MIDI pitch (fractional) of the main fundamental, if any.
    pitch: Option<f32>,
    /// Whether the main fundamental's first partial is among the peaks.
    has_fundamental: bool,
    /// Whether a second, unrelated fundamental holds a fair share.
    chord: bool,
}

/// Streaming tracker: [`TonalityTracker::push`] one internal-rate sample at a time.
pub struct TonalityTracker {
    rate: f32,
    spectrum: Spectrum,
    pending: Vec<f32>,
    hop: usize,
    frames: Vec<Frame>,
    max_frames: usize,
    power: Vec<f32>,
    peaks: Vec<(f32, f32)>,
    /// Samples pushed (and looked at).
    pushed: usize,
    /// Whether this tracker already runs on short frames.
    short: bool,
}

impl TonalityTracker {
    /// A tracker for mono audio at `rate` Hz, looking at most at `max_seconds`.
    pub fn new(rate: f32, max_seconds: f32) -> TonalityTracker {
        let frame_len = ((FRAME_SECONDS * rate) as usize).next_power_of_two();
        TonalityTracker::with_frame(rate, max_seconds, frame_len, false)
    }

    fn with_frame(rate: f32, max_seconds: f32, frame_len: usize, short: bool) -> TonalityTracker {
        let spectrum = Spectrum::new(frame_len);
        let hop = frame_len / 4;
        TonalityTracker {
            rate,
            power: vec![0.0; spectrum.bins()],
            spectrum,
            pending: Vec::with_capacity(2 * frame_len),
            hop,
            frames: Vec::new(),
            max_frames: (max_seconds * rate / hop as f32) as usize,
            peaks: Vec::with_capacity(4 * MAX_PEAKS),
            pushed: 0,
            short,
        }
    }

    pub fn push(&mut self, sample: f32) {
        if self.frames.len() >= self.max_frames {
            return;
        }
        self.pending.push(sample);
        self.pushed += 1;
        let frame_len = self.spectrum.frame_len();
        if self.pending.len() >= frame_len {
            self.analyse(frame_len);
            self.pending.drain(..self.hop);
        }
    }

    fn analyse(&mut self, len: usize) {
        let frame_len = self.spectrum.frame_len();
        let Some(bins) = self.spectrum.transform(&self.pending[..len]) else { return };
        for (p, c) in self.power.iter_mut().zip(bins) {
            *p = c.norm_sqr();
        }
        let bin_hz = self.rate / frame_len as f32;
        let lo = ((MIN_F0 / bin_hz) as usize).max(1);
        let hi = ((MAX_FREQ / bin_hz) as usize).min(self.power.len() - 2);
        let total: f32 = self.power[lo..=hi].iter().sum();
        if total <= 1e-12 {
            self.frames.push(Frame {
                power: 0.0,
                harmonicity: 0.0,
                pitch: None,
                has_fundamental: false,
                chord: false,
            });
            return;
        }
        let strongest = self.power[lo..=hi].iter().copied().fold(0.0, f32::max);
        let floor = strongest * PEAK_FLOOR * PEAK_FLOOR;
        self.peaks.clear();
        for k in lo..=hi {
            let (a, b, c) = (self.power[k - 1], self.power[k], self.power[k + 1]);
            if b < floor || b <= a || b < c {
                continue;
            }
            // Parabolic interpolation on log magnitude for the frequency; the peak's
            // power is that of its bin and both neighbours (a Hann window's main lobe).
            let (la, lb, lc) = ((a + 1e-20).ln(), (b + 1e-20).ln(), (c + 1e-20).ln());
            let denom = la - 2.0 * lb + lc;
            let offset = if denom.abs() > 1e-9 { (0.5 * (la - lc) / denom).clamp(-0.5, 0.5) } else { 0.0 };
            self.peaks.push(((k as f32 + offset) * bin_hz, a + b + c));
        }
        self.peaks.sort_by(|x, y| y.1.total_cmp(&x.1));
        self.peaks.truncate(MAX_PEAKS);
        let frame = explain(&mut self.peaks, total);
        self.frames.push(frame);
    }

    /// The tonality of everything pushed so far.
    pub fn finish(mut self) -> Tonality {
        let frame_len = self.spectrum.frame_len();
        if self.pushed < frame_len && !self.short {
            // Shorter than one frame: every sample is still pending, well within
            // the short tracker's limit of two frames' time.
            let mut short = TonalityTracker::with_frame(
                self.rate,
                2.0 * FRAME_SECONDS,
                frame_len / SHORT_FRAME_DIVISOR,
                true,
            );
            for &sample in &self.pending {
                short.push(sample);
            }
            return short.finish();
        }
        // The last part, hop by hop, zero-padded: a short one-shot (a few hundred
        // milliseconds) still gets several frames.
        while self.pending.len() > self.hop && self.frames.len() < self.max_frames {
            let len = self.pending.len().min(self.spectrum.frame_len());
            self.analyse(len);
            self.pending.drain(..self.hop);
        }
        if self.frames.is_empty() && !self.pending.is_empty() {
            let len = self.pending.len();
            self.analyse(len);
        }
        summarise(&self.frames, self.hop as f32 / self.rate)
    }
}

/// Takes up to [`MAX_VOICES`] fundamentals from `peaks` (frequency, power; strongest
/// first) and says how much of `total` power they explain.
fn explain(peaks: &mut Vec<(f32, f32)>, total: f32) -> Frame {
    let mut explained = 0.0;
    let mut main: Option<(f32, f32, bool)> = None;
    let mut chord = false;
    for voice in 0..MAX_VOICES {
        let Some((f0, power, has_fundamental)) = best_fundamental(peaks, total) else { break };
        let cents = HARMONIC_CENTS;
        peaks.retain(|&(f, _)| harmonic_number(f, f0, cents).is_none());
        explained += power;
        match main {
            None => main = Some((f0, power, has_fundamental)),
            Some((m, mp, _)) if voice >= 1 && power >= 0.25 * mp => {
                // A second voice an octave (or twelfth) away is the same note's timbre.
                let ratio = (f0 / m).max(m / f0);
                if harmonic_number(ratio, 1.0, 50.0).is_none() {
                    chord = true;
                }
            }
            _ => {}
        }
    }
    let harmonicity = (explained / total).min(1.0);
    let pitch = main.map(|(f0, _, _)| 69.0 + 12.0 * (f0 / 440.0).log2());
    Frame { power: total, harmonicity, pitch, has_fundamental: main.is_some_and(|m| m.2), chord }
}

/// The fundamental whose harmonics collect the most power among `peaks`: candidates
/// are every strong peak and its second and third subharmonics (deeper ones would
/// explain whole chords as one note); a candidate needs [`MIN_LOW_HARMONICS`] of its
/// first eight harmonics present (two when fewer than three fit below [`MAX_FREQ`]),
/// unless, from [`SINE_MIN_F0`] up, it holds [`SINE_SHARE`] of the frame's `total`
/// power with fewer; of two candidates within 10 % of each other's power the higher
/// wins (a subharmonic explains everything its multiple does).
fn best_fundamental(peaks: &[(f32, f32)], total: f32) -> Option<(f32, f32, bool)> {
    let mut best: Option<(f32, f32, bool)> = None;
    for &(f, _) in peaks.iter().take(8) {
        for divisor in 1..=3 {
            let f0 = f / divisor as f32;
            if !(MIN_F0..=MAX_F0).contains(&f0) {
                continue;
            }
            let mut power = 0.0;
            let mut present = 0u32;
            let mut weighted = 0.0;
            let mut weight = 0.0;
            for &(pf, pp) in peaks {
                if let Some(h) = harmonic_number(pf, f0, HARMONIC_CENTS).filter(|&h| h <= MAX_HARMONIC) {
                    power += pp;
                    present |= 1 << h.min(31);
                    // Refine f0 from the partials, weighted by power.
                    weighted += pp * pf / h as f32;
                    weight += pp;
                }
            }
            // Bits 1..=8: the first eight harmonics.
            // A high note has fewer harmonics in the analysed band: it needs those it has.
            let in_band = ((MAX_FREQ / f0) as u32).clamp(1, MIN_LOW_HARMONICS);
            let sine = divisor == 1 && f0 >= SINE_MIN_F0 && power >= SINE_SHARE * total;
            if (present & 0x1fe).count_ones() < in_band.max(2) && !sine {
                continue;
            }
            let refined = if weight > 0.0 { weighted / weight } else { f0 };
            let has_fundamental = present & 2 != 0;
            let better = match best {
                None => true,
                Some((bf, bp, _)) => {
                    if power > bp * 1.1 {
                        true
                    } else if power * 1.1 >= bp {
                        refined > bf
                    } else {
                        false
                    }
                }
            };
            if better {
                best = Some((refined, power, has_fundamental));
            }
        }
    }
    best
}

/// Which harmonic of `f0` the frequency `f` is, when within `cents` of one and within
/// [`HARMONIC_SLACK`] of it in multiples of `f0` (so high harmonics, whose cents span
/// wide stretches of spectrum, do not collect every stray partial).
fn harmonic_number(f: f32, f0: f32, cents: f32) -> Option<usize> {
    let ratio = f / f0;
    let h = ratio.round();
    if h < 1.0 || (ratio - h).abs() > HARMONIC_SLACK {
        return None;
    }
    let off = 1200.0 * (ratio / h).log2();
    (off.abs() <= cents).then_some(h as usize)
}

/// Whether frame `i` is harmonic, sounding (power at least `floor`) and holds its
/// pitch within [`STEADY_CENTS`] of a harmonic neighbour's.
fn is_steady(frames: &[Frame], i: usize, floor: f32) -> bool {
    let harmonic = |f: &Frame| f.power >= floor && f.harmonicity >= HARMONIC_FRAME && f.pitch.is_some();
    let close = |a: Option<f32>, b: Option<f32>| match (a, b) {
        (Some(a), Some(b)) => (a - b).abs() * 100.0 <= STEADY_CENTS,
        _ => false,
    };
    let f = &frames[i];
    if !harmonic(f) {
        return false;
    }
    let prev = i.checked_sub(1).map(|j| &frames[j]).filter(|p| harmonic(p));
    let next = frames.get(i + 1).filter(|n| harmonic(n));
    prev.is_some_and(|p| close(p.pitch, f.pitch)) || next.is_some_and(|n| close(n.pitch, f.pitch))
}

fn summarise(frames: &[Frame], hop_seconds: f32) -> Tonality {
    let loudest = frames.iter().map(|f| f.power).fold(0.0, f32::max);
    let none = Tonality::default();
    if loudest <= 1e-12 {
        return none;
    }
    let floor = loudest * 10f32.powf(-SOUNDING_DB / 10.0);
    let (mut sounding, mut steady_power, mut steady, mut chords) = (0.0f64, 0.0f64, 0usize, 0usize);
    let mut sounding_frames = 0usize;
    // Power-weighted histogram of steady pitches, in semitones (MIDI 0..128), and the
    // power of those whose fundamental partial was present.
    let mut notes = [0.0f64; 128];
    let mut with_fundamental = [0.0f64; 128];
    for (i, f) in frames.iter().enumerate() {
        if f.power < floor {
            continue;
        }
        sounding += f64::from(f.power);
        sounding_frames += 1;
        if !is_steady(frames, i, floor) {
            continue;
        }
        steady += 1;
        chords += usize::from(f.chord);
        let weight = f64::from(f.power * f.harmonicity);
        steady_power += f64::from(f.power);
        if let Some(p) = f.pitch {
            let note = p.round().clamp(0.0, 127.0) as usize;
            notes[note] += weight;
            if f.has_fundamental {
                with_fundamental[note] += weight;
            }
        }
    }
    if sounding <= 0.0 || steady == 0 {
        return none;
    }
    let pitch = notes
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .filter(|(_, w)| **w > 0.0)
        .map(|(note, &w)| (note as u8, with_fundamental[note] >= 0.5 * w));
    // The longest run of consecutive steady frames: its pitch drift.
    let mut glide = 0.0f32;
    let mut run: Option<(usize, f32, f32)> = None; // (length, first pitch, last pitch)
    let mut longest = 0usize;
    for (i, f) in frames.iter().enumerate() {
        let steady_here = is_steady(frames, i, floor);
        match (&mut run, steady_here, f.pitch) {
            (Some((len, _, last)), true, Some(p)) if (p - *last).abs() * 100.0 <= STEADY_CENTS => {
                *len += 1;
                *last = p;
            }
            (_, true, Some(p)) => run = Some((1, p, p)),
            _ => run = None,
        }
        if let Some((len, first, last)) = run
            && len > longest
        {
            longest = len;
            glide = first - last;
        }
    }
    let peak_at =
        frames.iter().enumerate().max_by(|a, b| a.1.power.total_cmp(&b.1.power)).map_or(0, |(i, _)| i);
    let quiet = loudest * 1e-3;
    let decay_frames =
        frames[peak_at..].iter().position(|f| f.power < quiet).unwrap_or(frames.len() - peak_at);
    let mut classes = [0.0f64; 12];
    for (note, w) in notes.iter().enumerate() {
        classes[note % 12] += w;
    }
    let total: f64 = classes.iter().sum();
    let top = classes.iter().copied().fold(0.0, f64::max);
    Tonality {
        tonality: (steady_power / sounding) as f32,
        steady_seconds: steady as f32 * hop_seconds,
        polyphony: chords as f32 / steady as f32,
        pitch,
        single_note: total > 0.0 && top >= f64::from(SINGLE_NOTE_SHARE) * total,
        glide,
        decay_seconds: decay_frames as f32 * hop_seconds,
        steady_share: steady as f32 / sounding_frames.max(1) as f32,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::Noise;
    use super::*;

    const RATE: f32 = 11_025.0;

    fn run(samples: &[f32]) -> Tonality {
        let mut t = TonalityTracker::new(RATE, 60.0);
        for &s in samples {
            t.push(s);
        }
        t.finish()
    }

    /// A decaying note of `partials` harmonics (amplitude 1/h) at MIDI `note`.
    fn note(midi: f32, seconds: f32, decay: f32, partials: usize) -> Vec<f32> {
        let f = 440.0 * 2f32.powf((midi - 69.0) / 12.0);
        (0..(seconds * RATE) as usize)
            .map(|i| {
                let t = i as f32 / RATE;
                let env = (-t * decay).exp();
                (1..=partials)
                    .filter(|h| f * *h as f32 <= MAX_FREQ)
                    .map(|h| (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32)
                    .sum::<f32>()
                    * 0.2
                    * env
            })
            .collect()
    }

    #[test]
    fn a_plucked_note_is_tonal_with_its_root() {
        for midi in [40.0, 48.0, 57.0, 64.0, 79.0] {
            let t = run(&note(midi, 1.5, 2.0, 8));
            assert!(t.tonality > 0.8, "{midi}: {t:?}");
            assert_eq!(t.pitch, Some((midi as u8, true)), "{midi}: {t:?}");
            assert!(t.polyphony < 0.2, "{midi}: {t:?}");
        }
    }

    #[test]
    fn a_pure_tone_has_its_pitch_and_a_low_sine_has_none() {
        // A celesta-like note: one partial, E5 and C7.
        for midi in [76.0, 96.0] {
            let t = run(&note(midi, 1.0, 2.0, 1));
            assert!(t.tonality > 0.8, "{midi}: {t:?}");
            assert_eq!(t.pitch, Some((midi as u8, true)), "{midi}: {t:?}");
        }
        // A steady sine at B1 (62 Hz) is a kick's or an 808's body, not a note.
        let t = run(&note(35.0, 1.0, 2.0, 1));
        assert_eq!(t.pitch, None, "{t:?}");
    }

    #[test]
    fn a_note_shorter_than_a_frame_is_seen_in_short_frames() {
        // A 90 ms looped wave of A#4, as a SoundFont keeps a clarinet.
        let t = run(&note(70.0, 0.09, 0.0, 6));
        assert_eq!(t.pitch, Some((70, true)), "{t:?}");
        assert!(t.steady_share > 0.6 && t.tonality > 0.8, "{t:?}");
        assert!(crate::is_tonal(crate::SampleKind::OneShot, &t), "{t:?}");
    }

    #[test]
    fn a_missing_fundamental_keeps_the_pitch_class_not_the_octave() {
        // Partials 2..8 of A2 (110 Hz): the ear hears A2, the octave is not sure.
        let f = 110.0;
        let samples: Vec<f32> = (0..(1.5 * RATE) as usize)
            .map(|i| {
                let t = i as f32 / RATE;
                (2..=8).map(|h| (2.0 * std::f32::consts::PI * f * h as f32 * t).sin() / h as f32).sum::<f32>()
                    * 0.2
            })
            .collect();
        let t = run(&samples);
        let (midi, octave_sure) = t.pitch.expect("a pitch");
        assert_eq!(midi % 12, 9, "{t:?}");
        assert!(midi == 45 && !octave_sure || midi == 57, "{t:?}");
    }

    #[test]
    fn a_chord_is_tonal_and_polyphonic() {
        let c: Vec<f32> = note(60.0, 2.0, 0.5, 6)
            .iter()
            .zip(note(64.0, 2.0, 0.5, 6))
            .zip(note(67.0, 2.0, 0.5, 6))
            .map(|((a, b), c)| a + b + c)
            .collect();
        let t = run(&c);
        assert!(t.tonality > 0.7, "{t:?}");
        assert!(t.polyphony > 0.5, "{t:?}");
    }

    #[test]
    fn noise_and_a_sine_kick_are_not_tonal() {
        let mut random = Noise(0x9e37_79b9_7f4a_7c15);
        let noise: Vec<f32> = (0..(1.0 * RATE) as usize)
            .map(|i| random.uniform() as f32 * (-(i as f32) / 2000.0).exp())
            .collect();
        assert!(run(&noise).tonality < 0.1, "{:?}", run(&noise));
        // A kick: one sine partial gliding from 150 Hz to 50 Hz, decaying fast.
        let mut phase = 0.0f32;
        let kick: Vec<f32> = (0..(0.6 * RATE) as usize)
            .map(|i| {
                let t = i as f32 / RATE;
                let f = 50.0 + 100.0 * (-t * 30.0).exp();
                phase += 2.0 * std::f32::consts::PI * f / RATE;
                phase.sin() * (-t * 8.0).exp()
            })
            .collect();
        assert_eq!(run(&kick).pitch, None, "{:?}", run(&kick));
        assert!(run(&kick).tonality < 0.1);
        assert_eq!(run(&vec![0.0; 20_000]).pitch, None);
    }
}

#[cfg(test)]
mod verdicts {
    use super::tests_support::*;
    use crate::{SampleKind, is_tonal};

    #[test]
    fn a_tom_whose_pitch_falls_is_not_tonal_and_a_held_note_is() {
        // Five harmonics at 110 Hz, decaying; the tom's pitch falls a semitone.
        let tom = tone(110.0, -1.0, 0.8, 4.0);
        let t = run(&tom);
        assert!(t.glide > 0.15, "{t:?}");
        assert!(!is_tonal(SampleKind::OneShot, &t), "{t:?}");
        let note = tone(110.0, 0.0, 0.8, 4.0);
        let t = run(&note);
        assert!(is_tonal(SampleKind::OneShot, &t), "{t:?}");
        assert_eq!(t.pitch, Some((45, true)));
        assert!(t.single_note);
    }
}

#[cfg(test)]
mod tests_support {
    use super::*;

    pub const RATE: f32 = 11_025.0;

    pub fn run(samples: &[f32]) -> Tonality {
        let mut t = TonalityTracker::new(RATE, 60.0);
        for &s in samples {
            t.push(s);
        }
        t.finish()
    }

    /// Five harmonics starting at `f` Hz whose pitch moves by `bend` semitones over
    /// `seconds`, decaying at `decay` per second.
    pub fn tone(f: f32, bend: f32, seconds: f32, decay: f32) -> Vec<f32> {
        let mut phase = 0.0f32;
        (0..(seconds * RATE) as usize)
            .map(|i| {
                let t = i as f32 / RATE;
                let freq = f * 2f32.powf(bend * t / seconds / 12.0);
                phase += 2.0 * std::f32::consts::PI * freq / RATE;
                (1..=5).map(|h| (phase * h as f32).sin() / h as f32).sum::<f32>() * 0.2 * (-t * decay).exp()
            })
            .collect()
    }
}
