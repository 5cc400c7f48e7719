//! The verdict: the rules a run's phases and attack phases are judged by, and their unit tests.

use std::collections::BTreeSet;

use crate::attack::AttackResult;
use crate::cli::SoakArgs;
use crate::phase::PhaseFigures;
use crate::sample::{mib, ProcSample};

/// Least-squares slope of `ys` against 0, 1, 2, ...
pub(crate) fn slope(ys: &[f64]) -> Option<f64> {
    if ys.len() < 2 {
        return None;
    }
    let n = ys.len() as f64;
    let mx = (n - 1.0) / 2.0;
    let my = ys.iter().sum::<f64>() / n;
    let (mut num, mut den) = (0.0, 0.0);
    for (i, y) in ys.iter().enumerate() {
        num += (i as f64 - mx) * (y - my);
        den += (i as f64 - mx) * (i as f64 - mx);
    }
    Some(num / den)
}

/// The verdict's thresholds (from the command line).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rules {
    /// RSS noise threshold, absolute part, MiB.
    pub(crate) rss_noise_mib: f64,
    /// RSS noise threshold, percent of phase 2's RSS.
    pub(crate) rss_noise_pct: f64,
    /// Largest RSS slope over phases 2..n, MiB per phase (or 1 % of phase 2's RSS if larger).
    pub(crate) rss_slope_mib: f64,
}

impl From<&SoakArgs> for Rules {
    fn from(a: &SoakArgs) -> Self {
        Rules { rss_noise_mib: a.rss_noise_mib, rss_noise_pct: a.rss_noise_pct, rss_slope_mib: a.rss_slope_mib }
    }
}

/// A rule of the verdict that a run broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Broken {
    /// A phase after the warm-up ended with another fd count than the baseline.
    Fds,
    /// A phase after phase 2 ended with RSS above phase 2's by more than the noise threshold.
    RssNoise,
    /// RSS over phases 2..n rose by more than the slope limit per phase.
    RssSlope,
    /// A valid request did not get the spec's answer.
    ValidFailures,
}

/// The verdict on a run: one word per phase for the table, the explaining lines, and the
/// rules broken (none: PASS).
#[derive(Debug, Clone, Default)]
pub(crate) struct Verdict {
    pub(crate) rows: Vec<String>,
    pub(crate) lines: Vec<String>,
    pub(crate) broken: BTreeSet<Broken>,
}

impl Verdict {
    pub(crate) fn pass(&self) -> bool {
        self.broken.is_empty()
    }
}

/// Judges a run from its phases' figures (phase 1, the warm-up, first): fds after every later
/// phase back exactly at phase 1's, RSS of phases >= 2 within the noise threshold of phase 2's,
/// the least-squares RSS slope over phases 2..n within its limit, no valid failures. `startup` is
/// the node before any client; `measured` says whether there was a process to read at all.
pub(crate) fn judge(results: &[PhaseFigures], startup: Option<ProcSample>, measured: bool, rules: &Rules) -> Verdict {
    let mut out = Verdict::default();
    let baseline_fds = results.first().filter(|r| r.phase == 1).and_then(|r| r.node).map(|s| s.fds);
    let ref_rss = results.get(1).and_then(|r| r.node).map(|s| mib(s.rss_kib));
    let noise = ref_rss.map(|r| rules.rss_noise_mib.max(r * rules.rss_noise_pct / 100.0));
    let slope_limit = ref_rss.map(|r| rules.rss_slope_mib.max(r / 100.0));
    for r in results {
        let mut bad = Vec::new();
        if r.phase >= 2 {
            if let (Some(s), Some(b)) = (r.node, baseline_fds) {
                if s.fds != b {
                    bad.push(format!("fds {} != {b}", s.fds));
                    out.broken.insert(Broken::Fds);
                }
            }
            if let (Some(s), Some(rr), Some(nz)) = (r.node, ref_rss, noise) {
                let d = mib(s.rss_kib) - rr;
                if d > nz {
                    bad.push(format!("RSS +{d:.1} MiB"));
                    out.broken.insert(Broken::RssNoise);
                }
            }
        }
        let vf = r.valid_failures;
        if vf > 0 {
            bad.push(format!("{vf} valid failures"));
            out.broken.insert(Broken::ValidFailures);
        }
        out.rows.push(if !bad.is_empty() {
            bad.join("; ")
        } else if r.phase == 1 {
            "warm-up (baseline)".to_owned()
        } else {
            "ok".to_owned()
        });
    }
    let verdict = &mut out.lines;
    let rss_series: Vec<f64> = results.iter().skip(1).filter_map(|r| r.node).map(|s| mib(s.rss_kib)).collect();
    let fitted = if rss_series.len() >= 3 { slope(&rss_series) } else { None };
    if !measured {
        verdict.push("no --pid: memory and fds not read, no verdict on them".to_owned());
    }
    if let (Some(b), Some(s)) = (baseline_fds, startup) {
        verdict.push(format!(
            "fds: {} at startup, baseline {b} after the warm-up phase; every later phase must return to it exactly",
            s.fds
        ));
    }
    if let (Some(rr), Some(nz), Some(sl)) = (ref_rss, noise, slope_limit) {
        verdict.push(format!(
            "RSS: phase 2 {rr:.1} MiB; later phases may exceed it by at most {nz:.1} MiB (max({} MiB, {} %): \
             allocator arenas and the store's page cache move by a few MiB from one phase to the next)",
            rules.rss_noise_mib, rules.rss_noise_pct
        ));
        match fitted {
            Some(f) => {
                let ok = f <= sl;
                verdict.push(format!(
                    "RSS slope over phases 2..{}: {f:+.2} MiB/phase (limit {sl:.2} = max({} MiB, 1 %) per phase): {}",
                    results.len(),
                    rules.rss_slope_mib,
                    if ok { "ok" } else { "GROWING" }
                ));
                if !ok {
                    out.broken.insert(Broken::RssSlope);
                }
            }
            None => verdict.push("RSS slope: fewer than 3 phases after the warm-up, not judged".to_owned()),
        }
        // A leak raises RSS every phase; an allocator that keeps a new, higher peak raises it
        // once, in a phase whose HWM rose too, and stays flat after: say which it looks like.
        let rises = |f: fn(&ProcSample) -> u64| -> Vec<usize> {
            results
                .windows(2)
                .filter_map(|w| match (w.first()?.node, w.get(1)?.node) {
                    (Some(a), Some(b)) if w.get(1)?.phase >= 3 && mib(f(&b)) - mib(f(&a)) > 1.0 => {
                        w.get(1).map(|r| r.phase)
                    }
                    _ => None,
                })
                .collect()
        };
        let (rss_rises, hwm_rises) = (rises(|s| s.rss_kib), rises(|s| s.hwm_kib));
        if results.len() >= 3 {
            verdict.push(format!(
                "RSS rose by more than 1 MiB in phases {rss_rises:?} (of 3..{}); the peak (HWM) rose in phases {hwm_rises:?}",
                results.len(),
            ));
        }
        let explained = rss_rises.iter().all(|p| hwm_rises.contains(p) || hwm_rises.contains(&(p - 1)));
        if !rss_rises.is_empty() && explained && results.len() < 10 {
            verdict.push(
                "hint: every RSS rise follows a new peak, which is what an allocator keeping freed memory does; \
                 with fewer than 10 phases that cannot be told from a leak: run --phases 12 (or more)"
                    .to_owned(),
            );
        }
    }
    out
}

/// What is wrong with an attack phase: fds not back at the baseline (plus the stated slack), RSS
/// not back within the tolerance, a valid failure, an attack that did not go as the spec says.
pub(crate) fn judge_attack(r: &AttackResult, first: Option<&AttackResult>, args: &SoakArgs) -> Vec<String> {
    let mut bad = Vec::new();
    let limit = r.allowed_secs;
    if let (Some(b), Some(a)) = (r.before, r.after) {
        if a.fds > b.fds + args.attack_fd_slack {
            bad.push(format!("fds {} > {} + {}", a.fds, b.fds, args.attack_fd_slack));
        } else if r.after_secs > limit {
            bad.push(format!("fds back after {:.1} s > {limit:.1} s", r.after_secs));
        }
    }
    // RSS: the first round is the warm-up (the allocator keeps what the attack made it map);
    // every later round must end where the first did.
    if let (Some(a), Some(f)) = (r.after, first.filter(|f| f.round < r.round).and_then(|f| f.after)) {
        let d = mib(a.rss_kib) - mib(f.rss_kib);
        let tolerance = args.attack_rss_mib.max(mib(f.rss_kib) * args.rss_noise_pct / 100.0);
        if d > tolerance {
            bad.push(format!("RSS +{d:.1} MiB over round 1's after > {tolerance:.1} MiB"));
        }
    }
    let vf: u64 = r.counts.iter().filter(|(k, _)| k.starts_with("valid failure|")).map(|(_, v)| v).sum();
    if vf > 0 {
        bad.push(format!("{vf} valid failures"));
    }
    let af: u64 = r.counts.iter().filter(|(k, _)| k.starts_with("attack failure|")).map(|(_, v)| v).sum();
    if af > 0 {
        bad.push(format!("{af} attack outcomes not as specified"));
    }
    bad
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;
    use crate::cli::Cli;

    /// The rules with the command line's defaults.
    fn rules() -> Rules {
        Rules::from(&Cli::parse_from(["kith-soak"]).soak)
    }

    /// A sample with `rss` MiB resident (and as peak) and `fds` open fds.
    fn sample(rss: f64, fds: usize) -> ProcSample {
        let kib = (rss * 1024.0).round() as u64;
        ProcSample { rss_kib: kib, hwm_kib: kib, anon_kib: kib, fds }
    }

    /// Phases 1..=n with the given RSS (MiB), 13 fds each and no valid failures.
    fn series(rss: &[f64]) -> Vec<PhaseFigures> {
        rss.iter()
            .enumerate()
            .map(|(i, r)| PhaseFigures { phase: i + 1, node: Some(sample(*r, 13)), valid_failures: 0 })
            .collect()
    }

    /// 12 phases like the 17:35 UTC live-set run: warm-up, then 33.3..33.9 MiB.
    fn flat() -> Vec<f64> {
        vec![33.0, 33.5, 33.3, 33.9, 33.6, 33.4, 33.8, 33.5, 33.3, 33.7, 33.6, 33.4]
    }

    fn judged(phases: &[PhaseFigures]) -> Verdict {
        judge(phases, Some(sample(6.0, 9)), true, &rules())
    }

    fn slope_line(v: &Verdict) -> &str {
        v.lines.iter().find(|l| l.starts_with("RSS slope")).map_or("", |l| l.as_str())
    }

    #[test]
    fn defaults_are_the_documented_rules() {
        let r = rules();
        assert_eq!((r.rss_noise_mib, r.rss_noise_pct, r.rss_slope_mib), (4.0, 5.0, 1.0));
    }

    #[test]
    fn flat_series_passes() {
        let v = judged(&series(&flat()));
        assert!(v.pass(), "{v:?}");
        assert_eq!(v.rows.first().map(String::as_str), Some("warm-up (baseline)"));
        assert!(v.rows.iter().skip(1).all(|r| r == "ok"), "{:?}", v.rows);
        assert!(slope_line(&v).ends_with(": ok"), "{}", slope_line(&v));
        assert!(v.lines.iter().any(|l| l.starts_with("fds: 9 at startup, baseline 13")), "{:?}", v.lines);
    }

    #[test]
    fn one_phase_off_the_fd_baseline_fails() {
        let mut p = series(&flat());
        if let Some(node) = p.get_mut(6).and_then(|f| f.node.as_mut()) {
            node.fds = 14;
        }
        let v = judged(&p);
        assert!(!v.pass());
        assert_eq!(v.broken, BTreeSet::from([Broken::Fds]));
        assert_eq!(v.rows.get(6).map(String::as_str), Some("fds 14 != 13"));
        assert_eq!(v.rows.iter().filter(|r| *r == "ok").count(), 10);
    }

    #[test]
    fn steady_leak_of_1_5_mib_per_phase_fails_by_the_slope() {
        // Every step is 1.5 MiB, well inside the 4 MiB noise threshold.
        let rss: Vec<f64> = (0..12).map(|i| 33.0 + 1.5 * i as f64).collect();
        let v = judged(&series(&rss));
        assert!(v.broken.contains(&Broken::RssSlope), "{v:?}");
        assert!(slope_line(&v).contains("+1.50 MiB/phase"), "{}", slope_line(&v));
        assert!(slope_line(&v).ends_with("GROWING"), "{}", slope_line(&v));
        // The early phases are each within the noise of phase 2: the slope is what catches it.
        assert_eq!(v.rows.get(2).map(String::as_str), Some("ok"));
        assert_eq!(v.rows.get(3).map(String::as_str), Some("ok"));
    }

    #[test]
    fn leak_just_above_1_mib_per_phase_under_noise_fails_by_the_slope() {
        // 1.1 MiB per phase with +-0.3 MiB of noise on top, as the live set moves.
        let wobble = [0.0, 0.3, -0.3, 0.2, -0.2, 0.3, -0.3, 0.1, -0.1, 0.3, -0.3, 0.0];
        let rss: Vec<f64> = wobble.iter().enumerate().map(|(i, w)| 33.0 + 1.1 * i as f64 + w).collect();
        let v = judged(&series(&rss));
        assert!(v.broken.contains(&Broken::RssSlope), "{}", slope_line(&v));
    }

    #[test]
    fn slow_leak_below_the_slope_limit_fails_by_the_noise_threshold_once_it_adds_up() {
        // 0.5 MiB per phase: slope ok, but phase 12 is 5 MiB above phase 2.
        let rss: Vec<f64> = (0..12).map(|i| 33.0 + 0.5 * i as f64).collect();
        let v = judged(&series(&rss));
        assert_eq!(v.broken, BTreeSet::from([Broken::RssNoise]), "{v:?}");
        assert!(slope_line(&v).ends_with(": ok"));
        assert_eq!(v.rows.last().map(String::as_str), Some("RSS +5.0 MiB"));
    }

    #[test]
    fn leak_of_0_3_mib_per_phase_is_not_seen() {
        // What the rules cannot see over 12 phases: 3 MiB in all, inside the noise threshold.
        let rss: Vec<f64> = (0..12).map(|i| 33.0 + 0.3 * i as f64).collect();
        assert!(judged(&series(&rss)).pass());
    }

    #[test]
    fn single_late_jump_above_noise_fails() {
        let mut rss = flat();
        if let Some(last) = rss.last_mut() {
            *last = 33.5 + 6.0;
        }
        let v = judged(&series(&rss));
        assert_eq!(v.broken, BTreeSet::from([Broken::RssNoise]), "{v:?}");
        assert_eq!(v.rows.last().map(String::as_str), Some("RSS +6.0 MiB"));
        // One jump at the end barely tilts the fitted line.
        assert!(slope_line(&v).ends_with(": ok"), "{}", slope_line(&v));
    }

    #[test]
    fn a_valid_failure_fails() {
        let mut p = series(&flat());
        if let Some(f) = p.get_mut(4) {
            f.valid_failures = 1;
        }
        let v = judged(&p);
        assert!(!v.pass());
        assert_eq!(v.broken, BTreeSet::from([Broken::ValidFailures]));
        assert_eq!(v.rows.get(4).map(String::as_str), Some("1 valid failures"));
    }

    #[test]
    fn warm_up_rss_is_ignored() {
        // Phase 1 grows the caches and arenas: far above (or below) the rest, it is not judged.
        for warm in [120.0, 5.0] {
            let mut rss = flat();
            if let Some(first) = rss.first_mut() {
                *first = warm;
            }
            let v = judged(&series(&rss));
            assert!(v.pass(), "{v:?}");
            assert!(slope_line(&v).contains("phases 2..12"), "{}", slope_line(&v));
        }
    }

    /// Phases 1..=n from a recorded table: (RSS, HWM) in MiB, as printed, with `fds` each.
    fn recorded(rows: &[(f64, f64)], fds: usize) -> Vec<PhaseFigures> {
        let kib = |m: f64| (m * 1024.0).round() as u64;
        rows.iter()
            .enumerate()
            .map(|(i, (rss, hwm))| PhaseFigures {
                phase: i + 1,
                node: Some(ProcSample { rss_kib: kib(*rss), hwm_kib: kib(*hwm), anon_kib: 0, fds }),
                valid_failures: 0,
            })
            .collect()
    }

    #[test]
    fn replays_the_1735_live_set_run() {
        // benches/README.md, Soak run: 12 x 10 s with MEASURE_LIVE_SET.
        let mut rows = vec![(15.8, 45.1), (33.7, 70.1)];
        for rss in [33.6, 33.5, 33.5, 33.4, 33.6, 33.6, 33.7, 33.6, 33.5, 33.6] {
            rows.push((rss, 70.5));
        }
        let v = judge(&recorded(&rows, 13), Some(sample(7.5, 13)), true, &rules());
        assert!(v.pass(), "{v:?}");
        // The slope of the rounded figures is 0 (printed +0.00 from the unrounded ones).
        assert!(slope_line(&v).contains("0.00 MiB/phase (limit 1.00 = max(1 MiB, 1 %) per phase): ok"), "{v:?}");
        assert!(v
            .lines
            .iter()
            .any(|l| l == "RSS rose by more than 1 MiB in phases [] (of 3..12); the peak (HWM) rose in phases []"));
    }

    #[test]
    fn replays_the_1730_glibc_default_run() {
        // The same build with glibc's defaults: retained arenas, not a leak, but the rules
        // cannot tell; this is why the launched node gets MEASURE_LIVE_SET.
        let rss = [49.4, 90.9, 91.3, 91.7, 91.7, 91.8, 89.8, 91.1, 103.3, 103.3, 103.3, 93.1];
        let hwm = [49.4, 94.3, 94.3, 94.3, 94.3, 94.3, 103.3, 103.3, 103.3, 103.3, 103.3, 103.3];
        let rows: Vec<(f64, f64)> = rss.iter().zip(hwm).map(|(r, h)| (*r, h)).collect();
        let v = judge(&recorded(&rows, 13), Some(sample(8.6, 13)), true, &rules());
        assert_eq!(v.broken, BTreeSet::from([Broken::RssNoise, Broken::RssSlope]));
        let bad: Vec<&str> = v.rows.iter().map(String::as_str).filter(|r| *r != "ok").collect();
        assert_eq!(bad, ["warm-up (baseline)", "RSS +12.4 MiB", "RSS +12.4 MiB", "RSS +12.4 MiB"]);
        assert!(v
            .lines
            .iter()
            .any(|l| l.starts_with("RSS: phase 2 90.9 MiB; later phases may exceed it by at most 4.5 MiB")));
        // +1.05 printed from the unrounded figures, +1.06 from the rounded ones.
        assert!(v.lines.iter().any(|l| l.starts_with("RSS slope over phases 2..12: +1.0") && l.ends_with("GROWING")));
        assert!(
            v.lines
                .iter()
                .any(|l| l
                    == "RSS rose by more than 1 MiB in phases [8, 9] (of 3..12); the peak (HWM) rose in phases [7]")
        );
    }

    #[test]
    fn without_a_process_there_is_no_memory_verdict() {
        let p: Vec<PhaseFigures> = (1..=3).map(|phase| PhaseFigures { phase, node: None, valid_failures: 0 }).collect();
        let v = judge(&p, None, false, &rules());
        assert!(v.pass());
        assert_eq!(v.lines, vec!["no --pid: memory and fds not read, no verdict on them".to_owned()]);
    }
}
