//! Scoring detections the way the Numenta Anomaly Benchmark (NAB) does (sans-IO), so that teams
//! can measure a detector on their own labelled incidents with the benchmark's rules:
//!
//! - each labelled window counts once, by its first detection, weighted by how early in the
//!   window it came (a scaled sigmoid of the position: 1 at the window's start, 0 at its end);
//!   a window with no detection costs the miss weight;
//! - each detection outside a window costs the false-positive weight, less when it comes just
//!   after a window (the sigmoid again, of the distance from the window's end);
//! - the first 15% of each series (at most 750 rows) is a probationary period, not scored;
//! - one threshold for the whole corpus, the one that scores best, and the result normalised so
//!   that a detector that never fires scores 0 and one that flags each window's start scores 100.

use serde::Serialize;

/// Weights of a scoring profile.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Profile {
    /// Weight of a true positive.
    pub true_positive: f64,
    /// Weight of a false positive.
    pub false_positive: f64,
    /// Weight of a missed window.
    pub false_negative: f64,
}

impl Profile {
    /// NAB's standard profile.
    pub const STANDARD: Profile = Profile { true_positive: 1.0, false_positive: 0.11, false_negative: 1.0 };
    /// NAB's profile that rewards few false positives.
    pub const LOW_FP: Profile = Profile { true_positive: 1.0, false_positive: 0.22, false_negative: 1.0 };
    /// NAB's profile that rewards few misses.
    pub const LOW_FN: Profile = Profile { true_positive: 1.0, false_positive: 0.11, false_negative: 2.0 };
}

/// One labelled series: each row's score and the labelled windows as inclusive row ranges.
#[derive(Debug, Clone)]
pub struct Series {
    /// A name for the series (its path in the corpus).
    pub name: String,
    /// Each row's anomaly score, 0 to 1.
    pub scores: Vec<f64>,
    /// Labelled windows: first and last row, inclusive, in order.
    pub windows: Vec<(usize, usize)>,
}

/// One scored row: its detector score, its weight when detected, and its window.
#[derive(Debug, Clone, Copy)]
struct Row {
    score: f64,
    weight: f64,
    /// `None` outside windows; `Some(id)` inside the window `id` (unique over the corpus).
    window: Option<usize>,
}

fn scaled_sigmoid(x: f64) -> f64 {
    if x > 3.0 { -1.0 } else { 2.0 / (1.0 + (5.0 * x).exp()) - 1.0 }
}

/// Rows of one series after its probationary period, with weights; window ids start at `first_id`.
fn rows(series: &Series, scores: &[f64], profile: &Profile, first_id: usize) -> (Vec<Row>, usize) {
    let n = scores.len();
    let probation = ((0.15 * n as f64).floor() as usize).min(750);
    let max_tp = scaled_sigmoid(-1.0);
    let mut out = Vec::with_capacity(n);
    let mut windows = series.windows.iter().enumerate().peekable();
    let mut current: Option<(usize, usize, f64)> = None;
    let mut previous: Option<(usize, f64)> = None;
    let mut counted = std::collections::BTreeSet::new();
    for (i, &score) in scores.iter().enumerate() {
        if let Some(&(k, &(start, end))) = windows.peek()
            && start == i
        {
            current = Some((k, end.min(n - 1), (end.min(n - 1) - start + 1) as f64));
            windows.next();
        }
        let weight = match (current, previous) {
            (Some((_, end, width)), _) => {
                let position = -((end - i + 1) as f64) / width;
                scaled_sigmoid(position) * profile.true_positive / max_tp
            }
            (None, None) => -profile.false_positive,
            (None, Some((end, width))) => {
                scaled_sigmoid((i - end) as f64 / (width - 1.0).max(1.0)) * profile.false_positive
            }
        };
        if i >= probation {
            let window = current.map(|(k, _, _)| first_id + k);
            if let Some(id) = window {
                counted.insert(id);
            }
            out.push(Row { score, weight, window });
        }
        if let Some((_, end, width)) = current
            && i == end
        {
            previous = Some((end, width));
            current = None;
        }
    }
    (out, first_id + series.windows.len())
}

/// The raw score of detections at `threshold`, and per window whether it was detected.
fn total(rows: &[Row], windows: &std::collections::BTreeSet<usize>, threshold: f64, profile: &Profile) -> f64 {
    let mut best: std::collections::BTreeMap<usize, f64> =
        windows.iter().map(|&w| (w, -profile.false_negative)).collect();
    let mut fp = 0.0;
    for r in rows.iter().filter(|r| r.score >= threshold) {
        match r.window {
            None => fp += r.weight,
            Some(w) => {
                let b = best.entry(w).or_insert(-profile.false_negative);
                *b = b.max(r.weight);
            }
        }
    }
    fp + best.values().sum::<f64>()
}

/// How a detector did on a corpus at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AtThreshold {
    /// The threshold: rows scoring at least this are detections.
    pub threshold: f64,
    /// NAB's normalised score: 0 never fires, 100 perfect.
    pub score: f64,
    /// Detections after the probationary periods.
    pub alerts: usize,
    /// Share of those inside a labelled window.
    pub precision: f64,
    /// Share of labelled windows (after the probationary periods) with at least one detection.
    pub recall: f64,
}

/// A detector's result on a corpus.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    /// At the threshold that scores best over the whole corpus.
    pub best: AtThreshold,
    /// At the threshold asked for (the detector's default flag).
    pub default: AtThreshold,
    /// Labelled windows scored (after the probationary periods).
    pub windows: usize,
    /// Rows scored.
    pub rows: usize,
}

struct Corpus {
    rows: Vec<Row>,
    windows: std::collections::BTreeSet<usize>,
}

fn corpus(series: &[Series], profile: &Profile, scores: impl Fn(&Series) -> Vec<f64>) -> Corpus {
    let mut all = Vec::new();
    let mut id = 0;
    for s in series {
        let (mut r, next) = rows(s, &scores(s), profile, id);
        id = next;
        all.append(&mut r);
    }
    let windows = all.iter().filter_map(|r| r.window).collect();
    Corpus { rows: all, windows }
}

/// The best raw total over all thresholds, and the threshold.
fn best_total(c: &Corpus, profile: &Profile) -> (f64, f64) {
    let mut order: Vec<&Row> = c.rows.iter().collect();
    order.sort_by(|a, b| b.score.total_cmp(&a.score));
    let mut best: std::collections::BTreeMap<usize, f64> =
        c.windows.iter().map(|&w| (w, -profile.false_negative)).collect();
    let mut windows_total = best.values().sum::<f64>();
    let mut fp = 0.0;
    let (mut best_score, mut threshold) = (windows_total, 1.1);
    let mut i = 0;
    while i < order.len() {
        let t = order[i].score;
        while i < order.len() && order[i].score == t {
            let r = order[i];
            match r.window {
                None => fp += r.weight,
                Some(w) => {
                    let b = best.entry(w).or_insert(-profile.false_negative);
                    if r.weight > *b {
                        windows_total += r.weight - *b;
                        *b = r.weight;
                    }
                }
            }
            i += 1;
        }
        if fp + windows_total > best_score {
            best_score = fp + windows_total;
            threshold = t;
        }
    }
    (best_score, threshold)
}

/// Scores `series` with NAB's rules under `profile`: at the best corpus-wide threshold and at
/// `default_threshold`.
pub fn evaluate(series: &[Series], profile: &Profile, default_threshold: f64) -> Evaluation {
    let detector = corpus(series, profile, |s| s.scores.clone());
    let null = corpus(series, profile, |s| vec![0.0; s.scores.len()]);
    let perfect = corpus(series, profile, |s| {
        let mut v = vec![0.0; s.scores.len()];
        for &(start, _) in &s.windows {
            if let Some(x) = v.get_mut(start) {
                *x = 1.0;
            }
        }
        v
    });
    let (n, _) = best_total(&null, profile);
    let (p, _) = best_total(&perfect, profile);
    let normalise = |d: f64| if p > n { 100.0 * (d - n) / (p - n) } else { 0.0 };
    let at = |threshold: f64| {
        let alerts: Vec<&Row> = detector.rows.iter().filter(|r| r.score >= threshold).collect();
        let inside = alerts.iter().filter(|r| r.window.is_some()).count();
        let found: std::collections::BTreeSet<usize> = alerts.iter().filter_map(|r| r.window).collect();
        AtThreshold {
            threshold,
            score: normalise(total(&detector.rows, &detector.windows, threshold, profile)),
            alerts: alerts.len(),
            precision: if alerts.is_empty() { 0.0 } else { inside as f64 / alerts.len() as f64 },
            recall: if detector.windows.is_empty() { 1.0 } else { found.len() as f64 / detector.windows.len() as f64 },
        }
    };
    let (_, best_threshold) = best_total(&detector, profile);
    Evaluation {
        best: at(best_threshold),
        default: at(default_threshold),
        windows: detector.windows.len(),
        rows: detector.rows.len(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(scores: Vec<f64>, windows: Vec<(usize, usize)>) -> Series {
        Series { name: "s".into(), scores, windows }
    }

    #[test]
    fn a_detector_that_flags_each_window_start_scores_100_and_one_that_never_fires_0() {
        let windows = vec![(300, 339), (700, 739)];
        let mut perfect = vec![0.0; 1000];
        perfect[300] = 1.0;
        perfect[700] = 1.0;
        let e = evaluate(&[series(perfect, windows.clone())], &Profile::STANDARD, 0.5);
        assert!((e.best.score - 100.0).abs() < 1e-9, "{e:?}");
        assert_eq!((e.default.alerts, e.default.precision, e.default.recall), (2, 1.0, 1.0));
        let never = evaluate(&[series(vec![0.0; 1000], windows.clone())], &Profile::STANDARD, 0.5);
        assert!(never.best.score.abs() < 1e-9);
        // Late in the window scores less; a false positive far from windows costs.
        let mut late = vec![0.0; 1000];
        late[335] = 1.0;
        late[735] = 1.0;
        let late = evaluate(&[series(late, windows.clone())], &Profile::STANDARD, 0.5);
        assert!(late.best.score > 0.0 && late.best.score < 70.0, "{late:?}");
        let mut noisy = vec![0.0; 1000];
        noisy[300] = 1.0;
        noisy[700] = 1.0;
        noisy[200] = 0.6;
        let noisy = evaluate(&[series(noisy, windows)], &Profile::STANDARD, 0.5);
        assert!(noisy.default.score < 100.0 && noisy.default.precision < 1.0);
        assert_eq!(noisy.best.score, 100.0, "the best threshold leaves the false positive out");
    }

    #[test]
    fn the_probationary_period_is_not_scored() {
        let mut early = vec![0.0; 1000];
        early[100] = 1.0;
        let e = evaluate(&[series(early, vec![(90, 120), (600, 650)])], &Profile::STANDARD, 0.5);
        assert_eq!((e.windows, e.default.alerts), (1, 0));
    }
}
