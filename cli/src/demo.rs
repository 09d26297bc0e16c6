//! `smpl demo`: packs a newcomer can search right away. Generates three small packs
//! of synthesised drums, bass and chords (deterministic), and publishes the
//! Hydrogen drum kits too when Debian's `hydrogen-data` is installed.

use std::f32::consts::TAU;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::json;
use smpl_node::{Home, PublishEvent, PublishRequest};
use smpl_protocol::{LicenseTerms, PackId, Price, slugify};

use crate::client::Client;
use crate::output::Printer;

const RATE: u32 = 44_100;
const HYDROGEN_KITS: &str = "/usr/share/hydrogen/data/drumkits";

/// A tiny deterministic noise source.
struct Noise(u32);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        (self.0 >> 8) as f32 / (1 << 23) as f32 - 1.0
    }
}

fn kick(pitch: f32, decay: f32) -> Vec<f32> {
    let n = (RATE as f32 * 0.6) as usize;
    let mut phase = 0.0f32;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let freq = pitch * 0.3 + pitch * 0.7 * (-t * 30.0).exp();
            phase += TAU * freq / RATE as f32;
            phase.sin() * (-t / decay).exp() * 0.9
        })
        .collect()
}

fn snare(tone: f32, seed: u32) -> Vec<f32> {
    let mut noise = Noise(seed);
    let n = (RATE as f32 * 0.35) as usize;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let body = (TAU * tone * t).sin() * (-t * 25.0).exp() * 0.5;
            body + noise.next() * (-t * 14.0).exp() * 0.45
        })
        .collect()
}

fn hat(length: f32, seed: u32) -> Vec<f32> {
    let mut noise = Noise(seed);
    let n = (RATE as f32 * length) as usize;
    let mut last = 0.0;
    (0..n)
        .map(|i| {
            let t = i as f32 / RATE as f32;
            let x = noise.next();
            let high = x - last;
            last = x;
            high * (-t * 4.0 / length).exp() * 0.4
        })
        .collect()
}

fn mix_at(out: &mut [f32], sound: &[f32], at: usize, gain: f32) {
    for (o, s) in out.iter_mut().skip(at).zip(sound) {
        *o += s * gain;
    }
}

/// Two bars of 4/4 at `bpm`: kicks, backbeat snares and eighth-note hats.
fn drum_loop(bpm: f32, pattern: u32) -> Vec<f32> {
    let beat = (RATE as f32 * 60.0 / bpm) as usize;
    let mut out = vec![0.0; beat * 8];
    let k = kick(55.0, 0.25);
    let s = snare(190.0, 7 + pattern);
    let h = hat(0.06, 11 + pattern);
    for b in 0..8 {
        if b % 2 == 0 || (pattern % 2 == 1 && b == 7) {
            mix_at(&mut out, &k, b * beat, 0.9);
        }
        if b % 2 == 1 {
            mix_at(&mut out, &s, b * beat, 0.8);
        }
        mix_at(&mut out, &h, b * beat, 0.5);
        mix_at(&mut out, &h, b * beat + beat / 2, 0.35);
    }
    out
}

fn note_freq(midi: i32) -> f32 {
    440.0 * 2f32.powf((midi - 69) as f32 / 12.0)
}

/// A two-bar bass line on the tonic and fifth of a key.
fn bass_loop(bpm: f32, tonic_midi: i32) -> Vec<f32> {
    let beat = (RATE as f32 * 60.0 / bpm) as usize;
    let mut out = vec![0.0; beat * 8];
    let steps = [0, 0, 7, 0, 12, 0, 7, 10];
    for (b, step) in steps.iter().enumerate() {
        let freq = note_freq(tonic_midi + step);
        for i in 0..beat {
            let t = i as f32 / RATE as f32;
            let saw = 2.0 * ((t * freq).fract()) - 1.0;
            out[b * beat + i] = saw * (-t * 6.0).exp() * 0.6;
        }
    }
    out
}

/// Chords held for two bars: tonic triad then the triad a fourth up.
fn chord_loop(bpm: f32, tonic_midi: i32, minor: bool) -> Vec<f32> {
    let beat = (RATE as f32 * 60.0 / bpm) as usize;
    let third = if minor { 3 } else { 4 };
    let mut out = vec![0.0; beat * 8];
    for (half, root) in [tonic_midi, tonic_midi + 5].iter().enumerate() {
        for i in 0..beat * 4 {
            let t = i as f32 / RATE as f32;
            let v: f32 =
                [0, third, 7, 12].iter().map(|iv| (TAU * note_freq(root + iv) * t).sin()).sum::<f32>();
            out[half * beat * 4 + i] = v * 0.18 * (1.0 - (-t * 40.0).exp());
        }
    }
    out
}

fn write_wav(path: &Path, samples: &[f32]) -> Result<()> {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer =
        hound::WavWriter::create(path, spec).with_context(|| format!("cannot write {}", path.display()))?;
    for s in samples {
        writer.write_sample((s.clamp(-1.0, 1.0) * 32_000.0) as i16)?;
    }
    writer.finalize()?;
    Ok(())
}

struct DemoPack {
    title: &'static str,
    genre: &'static str,
    tags: &'static [&'static str],
    description: &'static str,
    price: Option<u64>,
    files: Vec<(String, Vec<f32>)>,
}

fn demo_packs() -> Vec<DemoPack> {
    let mut dusty = Vec::new();
    for (i, (pitch, decay)) in [(60.0, 0.30), (52.0, 0.45), (70.0, 0.2)].iter().enumerate() {
        dusty.push((format!("Kicks/Dusty_808_Kick_{:02}.wav", i + 1), kick(*pitch, *decay)));
    }
    for (i, tone) in [180.0, 210.0, 160.0].iter().enumerate() {
        dusty.push((format!("Snares/Dusty_Snare_{:02}.wav", i + 1), snare(*tone, 3 + i as u32)));
    }
    for i in 0..3 {
        dusty.push((format!("Hats/Dusty_Hat_Closed_{:02}.wav", i + 1), hat(0.05 + 0.02 * i as f32, 21 + i)));
    }
    dusty.push(("Loops/Dusty_Drum_Loop_90bpm_01.wav".into(), drum_loop(90.0, 0)));
    dusty.push(("Loops/Dusty_Drum_Loop_90bpm_02.wav".into(), drum_loop(90.0, 1)));

    let mut techno = Vec::new();
    for i in 0..4 {
        techno.push((format!("Techno_Kick_{:02}.wav", i + 1), kick(48.0 + 4.0 * i as f32, 0.35)));
    }
    techno.push(("Techno_Hat_Open.wav".into(), hat(0.3, 77)));
    techno.push(("Techno_Drum_Loop_128bpm.wav".into(), drum_loop(128.0, 1)));
    techno.push(("Acid_Bass_Loop_128bpm_Am.wav".into(), bass_loop(128.0, 45)));
    techno.push(("Rumble_Bass_Loop_128bpm_Fm.wav".into(), bass_loop(128.0, 41)));

    let house = vec![
        ("House_Keys_Loop_122bpm_Fmaj.wav".to_string(), chord_loop(122.0, 53, false)),
        ("House_Keys_Loop_122bpm_Amin.wav".to_string(), chord_loop(122.0, 57, true)),
        ("House_Bass_Loop_122bpm_Cmin.wav".to_string(), bass_loop(122.0, 36)),
        ("House_Drum_Loop_122bpm.wav".to_string(), drum_loop(122.0, 2)),
    ];

    vec![
        DemoPack {
            title: "Dusty Drums",
            genre: "hip hop",
            tags: &["dusty", "lofi", "drums"],
            description: "Warm, dusty one-shots and loops for boom bap and lo-fi beats.",
            price: None,
            files: dusty,
        },
        DemoPack {
            title: "Neon Techno Tools",
            genre: "techno",
            tags: &["dark", "analog", "warehouse"],
            description: "Punchy kicks, hats and acid bass loops at 128 BPM.",
            price: Some(499),
            files: techno,
        },
        DemoPack {
            title: "Sunset House Keys",
            genre: "house",
            tags: &["chords", "deep", "warm"],
            description: "Deep house chord and bass loops at 122 BPM.",
            price: Some(299),
            files: house,
        },
    ]
}

/// Generates and publishes the demo packs through the running node (once: packs
/// already there are left alone).
pub fn publish_demo(home: &Home, out: &Printer) -> Result<()> {
    let client = Client::connect(home)?;
    let node_id = home.identity()?.node_id();
    let root = home.root().join("demo-audio");
    let mut packs: Vec<(PathBuf, PublishRequest)> = Vec::new();
    for pack in demo_packs() {
        let dir = root.join(slugify(pack.title));
        for (name, samples) in &pack.files {
            let path = dir.join(name);
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)?;
            }
            if !path.exists() {
                write_wav(&path, samples)?;
            }
        }
        packs.push((
            dir.clone(),
            PublishRequest {
                dir,
                title: Some(pack.title.into()),
                genre: Some(pack.genre.into()),
                tags: Some(pack.tags.iter().map(|t| t.to_string()).collect()),
                description: Some(pack.description.into()),
                price: pack.price.map(|amount_minor| Price { amount_minor, currency: "USD".into() }),
                license: Some(LicenseTerms::Named("royalty-free".into())),
                ..PublishRequest::default()
            },
        ));
    }
    if let Ok(kits) = std::fs::read_dir(HYDROGEN_KITS) {
        let mut kits: Vec<PathBuf> = kits.flatten().map(|e| e.path()).filter(|p| p.is_dir()).collect();
        kits.sort();
        for kit in kits {
            let name = kit.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            packs.push((
                kit.clone(),
                PublishRequest {
                    dir: kit,
                    title: Some(format!("Hydrogen {name}")),
                    genre: Some("drums".into()),
                    tags: Some(vec!["acoustic".into(), "drum kit".into(), "hydrogen".into()]),
                    description: Some(format!(
                        "The {name} drum kit from the Hydrogen drum machine (Debian's hydrogen-data)."
                    )),
                    license: Some(LicenseTerms::Named("GPL-2.0-or-later".into())),
                    ..PublishRequest::default()
                },
            ));
        }
    }
    for (dir, request) in packs {
        let title = request.title.clone().unwrap_or_default();
        let pack_id = PackId::derive(&node_id, &slugify(&title));
        if client.show(&pack_id.to_string()).is_ok() {
            continue;
        }
        client.publish(&request, |event| {
            match event {
                PublishEvent::Done(o) => {
                    if out.json() {
                        out.object(&json!({ "pack_id": o.pack_id, "title": title, "samples": o.samples }));
                    } else {
                        out.line(format!("demo: published {} ({} samples) {}", title, o.samples, o.pack_id));
                    }
                }
                PublishEvent::Error { message } => out.note(format!("demo: {}: {message}", dir.display())),
                _ => {}
            }
            Ok(())
        })?;
    }
    out.note(
        "demo ready: try `smpl search kick`, `smpl search --kind loop --bpm 120..130`, `smpl search --packs`",
    );
    Ok(())
}
