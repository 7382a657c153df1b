//! Robustness of the loader on damaged input: every configuration fixture
//! (`testdata/**/*.hcl`, `examples/*.hcl`) is mutated at random — bytes
//! flipped, ranges deleted, duplicated or spliced in from another fixture,
//! the text cut short, thousands of brackets or blocks nested — and the
//! loader and the formatter must answer with a configuration or with
//! diagnostics, never panic, overflow the stack or hang.
//!
//! The generator is a seeded xorshift, so a failure names a case that
//! reproduces. The run is bounded: `CASES` cases or `BUDGET`, whichever
//! ends first (`LIFEBOAT_FUZZ_CASES` asks for more).

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use lifeboat_schema::{format_source, load_sources};

const CASES: usize = 2_000;
const BUDGET: Duration = Duration::from_secs(10);
const SEED: u64 = 0x2545_F491_4F6C_DD1D;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn root() -> PathBuf {
    Path::new(&std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets it")).join("..")
}

fn hcl_files(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries {
        let p = e.unwrap().path();
        if p.is_dir() && recursive {
            hcl_files(&p, true, out);
        } else if p.extension().is_some_and(|x| x == "hcl") {
            out.push(p);
        }
    }
}

fn fixtures() -> Vec<Vec<u8>> {
    let mut files = Vec::new();
    hcl_files(&root().join("testdata"), true, &mut files);
    hcl_files(&root().join("examples"), false, &mut files);
    files.sort();
    files.into_iter().map(|f| fs::read(f).unwrap()).collect()
}

/// What stands for deep nesting: opened many times, rarely closed.
const OPENERS: &[&str] = &[
    "[",
    "{",
    "(",
    "{a = ",
    "\"${",
    "b {\n",
    "x = [",
    "<<EOT\n${",
];

/// One to three mutations of `text`, some taking pieces of `other`.
fn mutate(text: &[u8], other: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut s = text.to_vec();
    for _ in 0..=rng.below(3) {
        let at = rng.below(s.len() + 1);
        let len = 1 + rng.below(16);
        let end = (at + len).min(s.len());
        match rng.below(6) {
            // Flip bits of a byte (may leave invalid UTF-8 behind).
            0 if at < s.len() => s[at] ^= 1 << rng.below(8),
            1 => {
                s.drain(at..end);
            }
            2 => {
                let piece = s[at..end].to_vec();
                s.splice(at..at, piece);
            }
            3 if !other.is_empty() => {
                let from = rng.below(other.len());
                let to = (from + 1 + rng.below(64)).min(other.len());
                s.splice(at..at, other[from..to].iter().copied());
            }
            4 => s.truncate(at),
            _ => {
                let opener = OPENERS[rng.below(OPENERS.len())];
                let depth = [10, 100, 1_000, 100_000][rng.below(4)];
                s.splice(at..at, opener.repeat(depth).into_bytes());
            }
        }
    }
    s
}

#[test]
fn mutated_configurations_get_diagnostics_never_a_panic() {
    let inputs = fixtures();
    assert!(inputs.len() > 20, "fixtures not found under {:?}", root());
    let cases: usize = std::env::var("LIFEBOAT_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    let budget = if cases > CASES { Duration::MAX } else { BUDGET };
    let mut rng = Rng(SEED);
    let started = Instant::now();
    let (mut ran, mut loaded, mut refused) = (0, 0, 0);
    while ran < cases && started.elapsed() < budget {
        let which = rng.below(inputs.len());
        let other = &inputs[rng.below(inputs.len())];
        let bytes = mutate(&inputs[which], other, &mut rng);
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let path = PathBuf::from("fuzz.lb.hcl");
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            let r = load_sources(&[(path.clone(), text.clone())]);
            let _ = format_source(&path, &text);
            r
        }));
        match outcome {
            Ok(Ok(_)) => loaded += 1,
            Ok(Err(d)) => {
                assert!(!d.0.is_empty(), "case {ran}: an error without a diagnostic");
                refused += 1;
            }
            Err(_) => panic!(
                "case {ran} (seed {SEED:#x}, fixture {which}) panicked on:\n{}",
                text.chars().take(2_000).collect::<String>()
            ),
        }
        ran += 1;
    }
    eprintln!(
        "{ran} mutated configurations in {:?}: {loaded} loaded, {refused} refused",
        started.elapsed()
    );
    assert!(ran >= 100, "only {ran} cases ran in {BUDGET:?}");
    assert!(refused > 0 && loaded + refused == ran);
}
