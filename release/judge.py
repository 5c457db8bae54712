"""The judge: every check of a release, each signal of the catalogue, one verdict (pure).

What it decides, per check (one `interval` of new data): `rollback`, `hold` (no data,
or evidence leaning bad), `advance` (nothing against the candidate: a step may move on)
or `promote` (every critical gate has accepted the candidate).

Ratios and distributions: a sequential test per gate
-----------------------------------------------------
A ratio gate counts the candidate's bad events (5xx, failed triages, complaints) against
the reference's share `p` of them (stable's, or the baseline captured before a switch).
A distribution gate is the same test on the share of the candidate's requests above
the histogram bucket boundary nearest the reference's quantile (`Signal.quantile`),
chosen once from the reference's buckets: both versions are read through the same
boundary over the same windows, so coarse buckets cost power, never soundness; with
`direction: either` a second gate tests the share below the boundary at 1 - quantile.

Each gate is Wald's sequential probability ratio test of
    H0: the candidate's share <= good x p      against      H1: >= bad x p
(Wald 1945), with the log-likelihood ratio recomputed at each check from the candidate's
events so far and the reference's current share `p`, taken at its upper confidence bound
(`reference_share`: a reference with few events leans towards the candidate) and floored
at FLOOR, so a flawless reference still gives a usable `p`. An absolute gate
(`judged: absolute | both`) tests H0: <= bound / bad against H1: >= bound.

Bursts. Wald's bounds need independent requests; a pod restart or a GPU stall fails
requests together, which makes counts overdispersed: their variance is phi times the
binomial one. The log-likelihood ratio is then divided by phi, estimated from the data
(quasi-likelihood, McCullagh & Nelder 1989, ch. 9; its use in sequential tests:
Whitehead 1997, "The Design and Analysis of Sequential Clinical Trials", 3.7): Pearson's
chi-square of each version's per-check counts about its own share, over groups of
consecutive checks merged until each expects at least five bad events (so that sparse
counts at low traffic do not inflate it), pooled over both versions and the reference's
baseline, with four pseudo-degrees of freedom at phi = 1; phi is 1 unless the excess is
significant. In
the diffusion approximation of the test, scaling by phi restores the drift-to-variance
ratio that Wald's boundaries assume, so the bounds below hold for clustered failures as
they do for independent ones; the price is more evidence needed when failures cluster.

The family's bounds. `alpha` bounds the chance that any gate rolls back a candidate as
good as its reference: each gate gets alpha x its signal's `weight` / the weights of all
critical gates (a weighted Bonferroni split). `beta` bounds the chance that a candidate
at `bad` x the reference on some critical gate is promoted; promotion needs every gate
to accept, so that gate alone must wrongly accept: beta needs no split. Wald's
boundaries, A = log((1 - beta) / alpha_g) and B = log(beta / (1 - alpha_g)), give rates
at most alpha_g / (1 - beta) and beta / (1 - alpha_g); checking every `interval` rather
than every request overshoots them, which only lowers both.

No data, NaN or Inf for a critical signal is inconclusive: the check holds, never
passes (`Decision.inconclusive`); the driver aborts a step that stays inconclusive for
`rollout.analysis.maxInconclusiveSeconds`. A missing reference is judged against the
baseline captured before the release, if there is one; without either, inconclusive.

Gauges and counts (CPU, memory, pods not ready, restarts) are levels, not events: a
critical gauge rolls back when it breaches in two consecutive checks (the windows do not
overlap), a critical count when the candidate's total over the release reaches `bound`.
They are outside the family's alpha: their rules are deterministic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Mapping, Optional, Sequence, Union

from core.signals import Signal

Verdict = Literal["rollback", "hold", "advance", "promote"]
GateState = Literal["pass", "fail", "open", "no data"]
CANDIDATE, REFERENCE = "candidate", "reference"
MERGE_EXPECTED = 5.0  # least expected bad events per group in the dispersion estimate
PRIOR_DF = 4.0  # pseudo-degrees of freedom at phi = 1

CENSOR = 0.75  # one check's evidence counts up to this share of the upper boundary


@dataclass(frozen=True)
class Ratio:
    """Bad events among events, of one version in one check."""

    bad: float
    total: float


@dataclass(frozen=True)
class Histogram:
    """Cumulative counts by upper bound (`le`), ascending, the last one +Inf."""

    buckets: tuple[tuple[float, float], ...]

    @property
    def total(self) -> float:
        return self.buckets[-1][1] if self.buckets else 0.0

    def at_most(self, bound: float) -> float:
        return next((count for le, count in self.buckets if le == bound), 0.0)


@dataclass(frozen=True)
class Level:
    """A gauge or a count, with the limit it is judged against (if the signal has one)."""

    value: float
    limit: Optional[float] = None


Reading = Union[Ratio, Histogram, Level]
Check = Mapping[str, Mapping[str, Reading]]  # signal -> candidate | reference -> reading


def finite(reading: Optional[Reading]) -> bool:
    if reading is None:
        return False
    if isinstance(reading, Ratio):
        values: Sequence[float] = (reading.bad, reading.total)
    elif isinstance(reading, Histogram):
        values = [c for _, c in reading.buckets] or [math.nan]
    else:
        values = (reading.value,) if reading.limit is None else (reading.value, reading.limit)
    return all(math.isfinite(v) for v in values)


@dataclass(frozen=True)
class Test:
    """One sequential test: its definition, and the counts it has seen."""

    gate: str  # e.g. "errors", "errors (absolute)", "output-tokens (shorter)"
    signal: str
    critical: bool
    alpha: float
    good: float
    bad: float
    absolute: Optional[float] = None  # the bound, for an absolute gate
    min_events: float = 0.0  # the candidate's events before the gate may accept
    tail: Literal["", "above", "below"] = ""  # distributions: which side of `boundary` is bad
    quantile: float = 0.95
    boundary: Optional[float] = None
    candidate: tuple[tuple[float, float], ...] = ()  # per check: (bad, total)
    reference: tuple[tuple[float, float], ...] = ()  # per check
    baseline: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # before the release: bad, total, X2, df


@dataclass(frozen=True)
class GateView:
    """One gate at one check, for the progress line, the audit log and the report."""

    gate: str
    signal: str
    critical: bool
    state: GateState
    candidate: Optional[float] = None  # the candidate's share (or level) so far
    reference: Optional[float] = None
    evidence: Optional[float] = None  # the scaled log-likelihood ratio
    upper: Optional[float] = None  # roll back at or above
    lower: Optional[float] = None  # accept at or below
    dispersion: float = 1.0
    note: str = ""


@dataclass(frozen=True)
class JudgeState:
    tests: tuple[Test, ...]
    breaches: Mapping[str, int] = field(default_factory=dict)  # gauge -> consecutive breaches
    counts: Mapping[str, float] = field(default_factory=dict)  # count signal -> candidate total


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reasons: tuple[str, ...]
    gates: tuple[GateView, ...]
    inconclusive: bool = False  # a critical signal had no usable data
    exposure: float = 0.0  # the candidate's requests in this check (the `errors` denominator)


def since(current: Check, previous: Check, signals: Sequence[Signal]) -> Check:
    """One check's data from two cumulative readings (counters since the release started):
    their difference; gauges stay as read. A difference may dip below 0 where `increase()`
    extrapolates: it is kept, since the differences then add up to the cumulative reading,
    where clipping each at 0 would bias a share upwards."""
    kinds = {s.name: s.kind for s in signals}
    result: dict[str, dict[str, Reading]] = {}
    for name, readings in current.items():
        result[name] = {}
        for role, reading in readings.items():
            before = previous.get(name, {}).get(role)
            if kinds.get(name) == "gauge" or before is None or type(before) is not type(reading):
                result[name][role] = reading
            elif isinstance(reading, Ratio) and isinstance(before, Ratio):
                result[name][role] = Ratio(reading.bad - before.bad, reading.total - before.total)
            elif isinstance(reading, Histogram) and isinstance(before, Histogram):
                result[name][role] = Histogram(tuple((le, count - before.at_most(le)) for le, count in reading.buckets))
            elif isinstance(reading, Level) and isinstance(before, Level):
                result[name][role] = Level(reading.value - before.value, reading.limit)
    return result


# --- setting up ----------------------------------------------------------------------


def _tests_of(signal: Signal) -> list[Test]:
    base: dict[str, Any] = dict(signal=signal.name, critical=signal.critical, alpha=0.0, good=signal.good, bad=signal.bad, quantile=signal.quantile, min_events=signal.min_events)
    tests: list[Test] = []
    if signal.kind == "ratio":
        if signal.judged in ("relative", "both"):
            tests.append(Test(gate=signal.name, **base))
        if signal.judged in ("absolute", "both") and signal.bound is not None:
            tests.append(Test(gate=f"{signal.name} (absolute)", absolute=signal.bound, **base))
    elif signal.kind == "distribution":
        if signal.direction in ("up", "either"):
            tests.append(Test(gate=signal.name if signal.direction == "up" else f"{signal.name} (higher)", tail="above", **base))
        if signal.direction in ("down", "either"):
            low = {**base, "quantile": 1 - signal.quantile}
            tests.append(Test(gate=signal.name if signal.direction == "down" else f"{signal.name} (lower)", tail="below", **low))
    return tests


def start(signals: Sequence[Signal], alpha: float, baseline: Mapping[str, Sequence[Reading]] = {}) -> JudgeState:
    """A fresh judge: the statistical gates with their share of `alpha`, primed with the
    reference's baseline (signal -> its readings per interval before the release)."""
    tests = [t for s in signals for t in _tests_of(s)]
    weights = {s.name: s.weight for s in signals}
    per_signal = {s.name: sum(1 for t in tests if t.signal == s.name) for s in signals}
    critical_weight = sum(weights[t.signal] / per_signal[t.signal] for t in tests if t.critical) or 1.0
    shared = [replace(t, alpha=alpha * weights[t.signal] / per_signal[t.signal] / critical_weight) for t in tests]
    return JudgeState(tuple(_primed(t, baseline.get(t.signal, ())) for t in shared))


def _primed(test: Test, readings: Sequence[Reading]) -> Test:
    """The reference's baseline folded into the test: its share, and its dispersion."""
    usable = [r for r in readings if finite(r)]
    if test.tail:
        histograms = [r for r in usable if isinstance(r, Histogram)]
        if not histograms:
            return test
        test = replace(test, boundary=_choose_boundary(test, _sum_histograms(histograms)))
    counts = [c for r in usable if (c := _counts(test, r)) is not None]
    chi2, df = _pearson(counts)
    return replace(test, baseline=(sum(b for b, _ in counts), sum(n for _, n in counts), chi2, df))


def _sum_histograms(histograms: Sequence[Histogram]) -> Histogram:
    bounds = [le for le, _ in histograms[0].buckets]
    return Histogram(tuple((le, sum(h.at_most(le) for h in histograms)) for le in bounds))


def _counts(test: Test, reading: Reading) -> Optional[tuple[float, float]]:
    """(bad, total) of a reading for one test; None while a distribution has no boundary."""
    if isinstance(reading, Ratio):
        return reading.bad, reading.total
    if isinstance(reading, Histogram) and test.boundary is not None:
        below = min(reading.at_most(test.boundary), reading.total)  # differenced buckets can cross
        return (reading.total - below if test.tail == "above" else below), reading.total
    return None


def _choose_boundary(test: Test, reference: Histogram) -> Optional[float]:
    """The finite bucket boundary whose share on the bad side is nearest the quantile's."""
    if reference.total <= 0:
        return None
    target = 1 - test.quantile if test.tail == "above" else test.quantile
    options = [(le, (reference.total - c if test.tail == "above" else c) / reference.total) for le, c in reference.buckets if math.isfinite(le)]
    usable = [(le, share) for le, share in options if 0 < share < 1]
    if not usable:
        return None
    return min(usable, key=lambda option: abs(math.log(option[1] / target)))[0]


def _add(state: JudgeState, signal: str, candidate: Optional[Reading], reference: Optional[Reading]) -> JudgeState:
    tests = []
    for test in state.tests:
        if test.signal == signal:
            if test.tail and test.boundary is None and isinstance(reference, Histogram) and reference.total >= 5 / max(1 - test.quantile, 0.01) / 2:
                test = replace(test, boundary=_choose_boundary(test, reference))
            if reference is not None and finite(reference) and (counts := _counts(test, reference)) is not None:
                test = replace(test, reference=test.reference + (counts,))
            if candidate is not None and finite(candidate) and (counts := _counts(test, candidate)) is not None:
                test = replace(test, candidate=test.candidate + (counts,))
        tests.append(test)
    return replace(state, tests=tuple(tests))


# --- the statistics --------------------------------------------------------------------

FLOOR = 0.001  # the least share a reference is taken to have


def reference_share(test: Test, phi: float = 1.0) -> Optional[float]:
    """The reference's share of bad events the hypotheses scale: its upper confidence bound
    (about 97.5 %, Poisson, widened by phi), so a reference with few events, whose share is
    uncertain, never makes a good candidate look worse than it is; with a long baseline the
    bound is the share itself. Floored at FLOOR."""
    if test.absolute is not None:
        return test.absolute / test.bad  # H0's share; H1's is the bound itself
    bad = test.baseline[0] + sum(b for b, _ in test.reference)
    total = test.baseline[1] + sum(n for _, n in test.reference)
    if total <= 0:
        return None
    return min(max((bad + 1 + 2 * math.sqrt(phi * (bad + 1))) / (total + 1), FLOOR), 1.0)


def hypotheses(test: Test, share: float) -> tuple[float, float]:
    if test.absolute is not None:
        return min(share, 0.99), min(test.absolute, 0.999)
    return min(test.good * share, 0.99), min(test.bad * share, 0.999)


def log_likelihood_ratio(bad: float, total: float, p0: float, p1: float) -> float:
    return bad * math.log(p1 / p0) + (total - bad) * math.log((1 - p1) / (1 - p0))


def _pearson(buckets: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Pearson's chi-square of per-check counts about their pooled share, over groups of
    consecutive checks merged to at least MERGE_EXPECTED expected bad events; (X2, df)."""
    bad = sum(b for b, _ in buckets)
    total = sum(n for _, n in buckets)
    if total <= 0 or bad <= 0 or bad >= total:
        return 0.0, 0.0
    share = bad / total
    groups: list[tuple[float, float]] = []
    group_bad = group_total = 0.0
    for b, n in buckets:
        group_bad, group_total = group_bad + b, group_total + n
        if group_total * share >= MERGE_EXPECTED and group_total * (1 - share) >= MERGE_EXPECTED:
            groups.append((group_bad, group_total))
            group_bad = group_total = 0.0
    if group_total > 0 and groups:  # the remainder joins the last group
        last_bad, last_total = groups.pop()
        groups.append((last_bad + group_bad, last_total + group_total))
    if len(groups) < 2:
        return 0.0, 0.0
    chi2 = sum((b - n * share) ** 2 / (n * share * (1 - share)) for b, n in groups)
    return chi2, len(groups) - 1.0


def dispersion(test: Test) -> float:
    """phi: how much more the counts vary than independent requests would; 1 unless the excess is
    significant (chi-square about two standard deviations above its degrees of freedom), so that
    steady traffic does not pay for the estimate's own noise."""
    chi_c, df_c = _pearson(test.candidate)
    chi_r, df_r = _pearson(test.reference)
    chi_b, df_b = test.baseline[2:]
    df = df_c + df_r + df_b + PRIOR_DF
    phi = (chi_c + chi_r + chi_b + PRIOR_DF) / df
    return phi if phi > 1 + 2 * math.sqrt(2 / df) else 1.0


def censored_evidence(checks: Sequence[tuple[float, float]], p0: float, p1: float, phi: float, limit: float) -> float:
    """The sum over checks of each check's log-likelihood ratio, scaled by phi and censored
    to [-limit, limit] (Huber 1965): no single check, however extreme, decides alone."""
    return sum(max(-limit, min(limit, log_likelihood_ratio(b, n, p0, p1) / phi)) for b, n in checks)


def boundaries(test: Test, beta: float) -> tuple[float, float]:
    return math.log((1 - beta) / test.alpha), math.log(beta / (1 - test.alpha))


def _view(test: Test, beta: float) -> GateView:
    upper, lower = boundaries(test, beta)
    base: dict[str, Any] = dict(gate=test.gate, signal=test.signal, critical=test.critical, upper=upper, lower=lower)
    phi = dispersion(test)
    share = reference_share(test, phi)
    bad = sum(b for b, _ in test.candidate)
    total = sum(n for _, n in test.candidate)
    if share is None or (test.tail and test.boundary is None):
        return GateView(state="no data", note="no reference data yet", **base)
    p0, p1 = hypotheses(test, share)
    evidence = censored_evidence(test.candidate, p0, p1, phi, CENSOR * upper)
    state: GateState = "fail" if evidence >= upper else "pass" if evidence <= lower and total >= test.min_events else "open"
    reference = share if test.absolute is None else test.absolute
    note = f"share {'above' if test.tail == 'above' else 'at or below'} {test.boundary:g}" if test.tail else ""
    return GateView(state=state, candidate=bad / total if total else None, reference=reference, evidence=evidence, dispersion=phi, note=note, **base)


def _level_view(signal: Signal, reading: Optional[Level], reference: Optional[Level], state: JudgeState) -> tuple[GateView, bool]:
    """A gauge or count gate, and whether it breached in this check."""
    if signal.kind == "count":
        total = state.counts.get(signal.name, 0.0)
        breached = signal.bound is not None and total >= signal.bound
        return GateView(signal.name, signal.name, signal.critical, "fail" if breached else "pass", total, signal.bound, note="over the release"), breached
    if reading is None:
        return GateView(signal.name, signal.name, signal.critical, "no data"), False
    limits = []
    if signal.judged in ("relative", "both") and reference is not None and reference.value > 0:
        limits.append(signal.bad * reference.value)
    if signal.judged in ("absolute", "both") and signal.bound is not None:
        limits.append(signal.bound * reading.limit if signal.limit and reading.limit else signal.bound)
    breached = any(reading.value > limit for limit in limits)
    return GateView(signal.name, signal.name, signal.critical, "fail" if breached else "pass", reading.value, min(limits) if limits else None), breached


# --- one check -------------------------------------------------------------------------


def judge(state: JudgeState, check: Check, signals: Sequence[Signal], beta: float, progress: float = 0.0) -> tuple[Decision, JudgeState]:
    """Add one check's data and decide.

    `progress` is the candidate's share of traffic now (0..1). Its share does not run ahead of
    the evidence for it: the verdict is `advance` only when every critical gate's evidence is
    below 0 (favours the candidate) and, past half the traffic, at or below
    (2 x progress - 1) x its accept boundary: the candidate takes most patients only once it
    is half proven. A bad candidate then stays at the weight where it fails the fewest requests
    per check until the evidence against it decides."""
    missing = []
    exposure = 0.0
    levels: list[tuple[GateView, bool]] = []
    for signal in signals:
        readings = check.get(signal.name, {})
        candidate, reference = readings.get(CANDIDATE), readings.get(REFERENCE)
        usable = finite(candidate)
        if signal.critical and not usable:
            missing.append(signal.name)
        if signal.name == "errors" and isinstance(candidate, Ratio) and usable:
            exposure = candidate.total
        if signal.statistical:
            state = _add(state, signal.name, candidate if usable else None, reference if finite(reference) else None)
            continue
        level = candidate if isinstance(candidate, Level) and usable else None
        if signal.kind == "count" and level is not None:
            state = replace(state, counts={**state.counts, signal.name: state.counts.get(signal.name, 0.0) + level.value})
        ref_level = reference if isinstance(reference, Level) and finite(reference) else None
        view, breached = _level_view(signal, level, ref_level, state)
        breaches = state.breaches.get(signal.name, 0) + 1 if breached else 0
        state = replace(state, breaches={**state.breaches, signal.name: breaches})
        levels.append((view, breached and (signal.kind == "count" or breaches >= 2)))

    views = [_view(t, beta) for t in state.tests] + [v for v, _ in levels]
    for view in views:
        if view.critical and view.state == "no data" and view.signal not in missing:
            missing.append(view.signal)
    critical = [v for v in views if v.critical]
    failed = [v for v in critical if v.state == "fail" and v.evidence is not None] + [v for v, rolls in levels if v.critical and rolls]
    if failed:
        return Decision("rollback", tuple(_failure(v) for v in failed), tuple(views), bool(missing), exposure), state
    if missing:
        return Decision("hold", (f"inconclusive: no usable data for {', '.join(missing)}",), tuple(views), True, exposure), state
    share = max(2 * progress - 1, 0.0)
    behind = [(v, v.lower) for v in critical if v.evidence is not None and v.lower is not None and v.evidence > share * v.lower]
    if behind:
        reasons = tuple(f"{v.gate}: evidence {v.evidence:.2f}, needs {share * lower:.2f} for more traffic (accepts at {lower:.2f}, rolls back at {v.upper:.2f})" for v, lower in behind)
        return Decision("hold", reasons, tuple(views), False, exposure), state
    waiting = [v for v in critical if v.state == "open"]
    if waiting:
        return Decision("advance", tuple(f"{v.gate}: evidence {v.evidence:.2f}, accepts at {v.lower:.2f}" for v in waiting), tuple(views), False, exposure), state
    return Decision("promote", ("every critical gate accepts the candidate",), tuple(views), False, exposure), state


def _failure(view: GateView) -> str:
    if view.evidence is None:
        return f"{view.gate}: {view.candidate:g} beyond {view.reference:g}"
    what = f"{view.candidate:.4g}" if view.candidate is not None else "-"
    return f"{view.gate}: candidate {what} against {view.reference:.4g}; evidence {view.evidence:.2f} >= {view.upper:.2f} (phi {view.dispersion:.2f})"
