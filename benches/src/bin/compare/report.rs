//! Interleaved rounds and the markdown tables.

/// One entry in a comparison: a name and a closure that runs one measurement, returning one
/// value per column of its table.
pub struct Contestant {
    pub name: String,
    pub run: Box<dyn FnMut() -> Vec<f64>>,
}

/// Runs every contestant once per round, rounds interleaved: round `r` runs all of them, starting
/// at contestant `r` and wrapping around, so none is always first or last. Returns
/// `[contestant][round][metric]`.
pub fn run_rounds(rounds: usize, contestants: &mut [Contestant]) -> Vec<Vec<Vec<f64>>> {
    let n = contestants.len();
    let mut results = vec![Vec::with_capacity(rounds); n];
    for r in 0..rounds {
        for k in 0..n {
            let i = (k + r) % n;
            *RUNNING.lock().unwrap_or_else(|e| e.into_inner()) = contestants[i].name.clone();
            results[i].push((contestants[i].run)());
        }
    }
    results
}

/// The contestant running now, for the watchdog.
static RUNNING: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Fails the run, naming the contestant then running, if it has not finished after `limit`:
/// a peer that hangs must end the run with a clear message, not stall CI until its timeout.
pub fn watchdog(limit: std::time::Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        let running = RUNNING.lock().unwrap_or_else(|e| e.into_inner()).clone();
        eprintln!("compare: still running after {limit:?}, in {running:?}: a peer hung");
        std::process::exit(1);
    });
}

/// A column of a table: its header and how to print one value.
#[derive(Clone, Copy)]
pub struct Column {
    pub header: &'static str,
    pub fmt: fn(f64) -> String,
}

/// A ratio column against the baseline (the first contestant), on the medians of `metric`.
pub struct RatioColumn {
    pub metric: usize,
    /// Throughput-like: ratio is baseline / peer. Time-like: peer / baseline. Either way, above
    /// 1 means the baseline (ringwal) did better.
    pub higher_is_better: bool,
    pub header: &'static str,
}

/// Median, min and max of the rounds' values.
pub fn summary(values: &[f64]) -> (f64, f64, f64) {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    (median, v[0], v[n - 1])
}

/// Prints one markdown table: per contestant, every column as `median [min, max]` over the
/// rounds, then the ratio columns. The first contestant is the baseline.
pub fn print_table(
    title: &str,
    notes: &[String],
    columns: &[Column],
    ratios: &[RatioColumn],
    names: &[String],
    results: &[Vec<Vec<f64>>],
) {
    println!("### {title}\n");
    for note in notes {
        println!("{note}  ");
    }
    if !notes.is_empty() {
        println!();
    }
    let mut header = String::from("| peer |");
    let mut rule = String::from("|---|");
    for c in columns {
        header += &format!(" {} |", c.header);
        rule += "---:|";
    }
    for r in ratios {
        header += &format!(" {} |", r.header);
        rule += "---:|";
    }
    println!("{header}\n{rule}");
    let median_of = |i: usize, metric: usize| {
        let values: Vec<f64> = results[i].iter().map(|round| round[metric]).collect();
        summary(&values).0
    };
    for (i, name) in names.iter().enumerate() {
        let mut row = format!("| {name} |");
        for (m, c) in columns.iter().enumerate() {
            let values: Vec<f64> = results[i].iter().map(|round| round[m]).collect();
            let (med, min, max) = summary(&values);
            row += &format!(" {} [{}, {}] |", (c.fmt)(med), (c.fmt)(min), (c.fmt)(max));
        }
        for r in ratios {
            let (base, peer) = (median_of(0, r.metric), median_of(i, r.metric));
            let ratio = if r.higher_is_better {
                base / peer
            } else {
                peer / base
            };
            if i == 0 {
                row += " 1 (baseline) |";
            } else {
                row += &format!(" {ratio:.2}x |");
            }
        }
        println!("{row}");
    }
    println!();
}

pub fn mega(x: f64) -> String {
    format!("{:.2}", x / 1e6)
}

pub fn ns1(x: f64) -> String {
    format!("{x:.1}")
}

pub fn int(x: f64) -> String {
    format!("{x:.0}")
}

pub fn percent(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}
