//! The `tracing_decoder` fuzz target's body (`fuzz/src/tracing_decoder.rs`) on stable: on the
//! committed seeds (a real log's records), on every truncation and many byte flips of them,
//! and on random bytes.

#[path = "../../fuzz/src/tracing_decoder.rs"]
mod body;

use std::path::Path;

fn seeds() -> Vec<Vec<u8>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/seeds/tracing_decoder");
    let seeds: Vec<Vec<u8>> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| std::fs::read(e.unwrap().path()).unwrap())
        .collect();
    assert!(!seeds.is_empty(), "no seeds in {}", dir.display());
    seeds
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[test]
fn seeds_truncations_and_flips_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for seed in seeds() {
        body::tracing_decoder(&seed);
        for cut in 0..seed.len() {
            body::tracing_decoder(&seed[..cut]);
        }
        for _ in 0..2_000 {
            let mut m = seed.clone();
            for _ in 0..1 + rng.next() % 4 {
                let i = (rng.next() as usize) % m.len();
                m[i] = rng.next() as u8;
            }
            body::tracing_decoder(&m);
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(7);
    for _ in 0..5_000 {
        let len = (rng.next() % 512) as usize;
        let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        // Often start records with the tag so the decoder gets past it.
        if data.len() > 4 && rng.next().is_multiple_of(2) {
            data[2] = 0xFF;
            data[3] = b'T';
        }
        body::tracing_decoder(&data);
    }
}
