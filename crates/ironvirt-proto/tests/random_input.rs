//! Runs a few hundred thousand random and mutated inputs through every
//! decoder (the same entry point as the `packet` fuzz target), with a fixed
//! seed so a failure reproduces. The only assertion is that nothing panics.

use ironvirt_proto::fuzzing::decode_everything;

/// xorshift64*: small, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Seeds: every packet of the captured fixtures.
fn seeds() -> Vec<Vec<u8>> {
    let dir = format!("{}/tests/fixtures", env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .collect();
    names.sort();
    for path in names {
        let text = std::fs::read_to_string(&path).expect("readable");
        for l in text
            .lines()
            .filter(|l| l.starts_with("C ") || l.starts_with("S "))
        {
            let hex = &l[2..];
            let b: Vec<u8> = (0..hex.len())
                .step_by(2)
                .filter_map(|i| u8::from_str_radix(&hex[i..i + 2], 16).ok())
                .collect();
            out.push(b);
        }
    }
    assert!(out.len() > 100);
    out
}

fn mutate(rng: &mut Rng, seed: &[u8]) -> Vec<u8> {
    let mut b = seed.to_vec();
    let rounds = 1 + rng.below(4);
    for _ in 0..rounds {
        match rng.below(7) {
            // Flip a byte.
            0 if !b.is_empty() => {
                let i = rng.below(b.len());
                b[i] ^= 1 << rng.below(8);
            }
            // Overwrite a 4-byte word with an interesting value.
            1 if b.len() >= 4 => {
                let i = rng.below(b.len() - 3) & !3;
                let v: u32 = [
                    0,
                    1,
                    2,
                    0x7fff_ffff,
                    0x8000_0000,
                    0xffff_ffff,
                    0x0040_0001,
                    27,
                    28,
                    29,
                ][rng.below(10)];
                b[i..i + 4].copy_from_slice(&v.to_be_bytes());
            }
            // Truncate.
            2 if !b.is_empty() => {
                let n = rng.below(b.len());
                b.truncate(n);
            }
            // Append junk.
            3 => {
                let n = rng.below(16);
                for _ in 0..n {
                    b.push(rng.next() as u8);
                }
            }
            // Drop the length word so payload decoders see the header first.
            4 if b.len() > 28 => {
                b.drain(..28);
            }
            // Fix the length word to the (mutated) size.
            5 if b.len() >= 4 => {
                let n = b.len() as u32;
                b[..4].copy_from_slice(&n.to_be_bytes());
            }
            _ => {
                let i = rng.below(b.len() + 1);
                b.insert(i, rng.next() as u8);
            }
        }
    }
    b
}

#[test]
fn random_and_mutated_inputs_never_panic() {
    let seeds = seeds();
    let mut rng = Rng(0x5eed_1e55_cafe_f00d);
    let iterations = 200_000;
    for i in 0..iterations {
        let input = if i % 8 == 0 {
            let n = rng.below(96);
            (0..n).map(|_| rng.next() as u8).collect()
        } else {
            let s = &seeds[rng.below(seeds.len())];
            // Keep the big XML replies from dominating the run time.
            let s = if s.len() > 512 && rng.below(4) != 0 {
                &s[..512]
            } else {
                &s[..]
            };
            mutate(&mut rng, s)
        };
        decode_everything(&input);
    }
    // Every seed as it is.
    for s in &seeds {
        decode_everything(s);
    }
}
