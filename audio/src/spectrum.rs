//! A Hann-windowed real FFT of one frame length, with its buffers: the step the
//! tempo and key detectors share as they analyse audio frame by frame.

use std::sync::Arc;

use realfft::num_complex::Complex;
use realfft::{RealFftPlanner, RealToComplex};

pub(crate) struct Spectrum {
    fft: Arc<dyn RealToComplex<f32>>,
    window: Vec<f32>,
    input: Vec<f32>,
    output: Vec<Complex<f32>>,
    scratch: Vec<Complex<f32>>,
}

impl Spectrum {
    pub fn new(frame_len: usize) -> Spectrum {
        let fft = RealFftPlanner::<f32>::new().plan_fft_forward(frame_len);
        let window = (0..frame_len)
            .map(|i| 0.5 - 0.5 * (2.0 * std::f32::consts::PI * i as f32 / frame_len as f32).cos())
            .collect();
        Spectrum {
            window,
            input: fft.make_input_vec(),
            output: fft.make_output_vec(),
            scratch: fft.make_scratch_vec(),
            fft,
        }
    }

    pub fn frame_len(&self) -> usize {
        self.window.len()
    }

    /// Number of bins of a spectrum: `frame_len / 2 + 1`.
    pub fn bins(&self) -> usize {
        self.output.len()
    }

    /// The spectrum of `frame` windowed, zero-padded when shorter than a frame.
    /// `None` only if the transform fails, which the fixed lengths rule out.
    pub fn transform(&mut self, frame: &[f32]) -> Option<&[Complex<f32>]> {
        let len = frame.len().min(self.input.len());
        for ((x, sample), w) in self.input.iter_mut().zip(&frame[..len]).zip(&self.window) {
            *x = sample * w;
        }
        self.input[len..].fill(0.0);
        self.fft.process_with_scratch(&mut self.input, &mut self.output, &mut self.scratch).ok()?;
        Some(&self.output)
    }
}
