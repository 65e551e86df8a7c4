// Coverage of places and grids, evaluated from the rules table the server derives from client-core's
// coverage rules (served as rules.json). Nothing about the campaign is written here: which kinds count for
// an indicator, which deliveries reach it and which outcomes exclude or call for a revisit all come from the
// table; this file only mirrors how client_core::coverage combines them.

/** Bit mask of a visit's deliveries, in the table's field order. */
export const deliveryMask = (rules, visit) =>
  rules.delivery_fields.reduce((m, f, i) => m | (visit[f] ? 1 << i : 0), 0);

/** "Which came last": by time, then by visit id (UUID v7), as on every replica. */
const later = (a, b) => (b.at > a.at || (b.at === a.at && b.id > a.id) ? b : a);

export function eligibleIndicators(rules, kind, rural) {
  return rules.indicators.filter((ind) => (rural ? ind.eligible_rural : ind.eligible_urban).includes(kind));
}

/** The state of one place given its visits (client_core::coverage::place_coverage). */
export function placeCoverage(rules, kind, rural, visits) {
  const last = visits.length ? visits.reduce(later) : null;
  const excluded = !!last && rules.excluding_outcomes.includes(last.outcome);
  const masks = visits.map((v) => deliveryMask(rules, v));
  const reached = [];
  const missing = [];
  for (const ind of eligibleIndicators(rules, kind, rural)) {
    (masks.some((m) => ind.reached_by.includes(m)) ? reached : missing).push(ind.id);
  }
  const needsRevisit = !excluded && missing.length > 0 && !!last && rules.revisit_outcomes.includes(last.outcome);
  return { reached, missing, excluded, needsRevisit, visitCount: visits.length, done: excluded || missing.length === 0 };
}

/** Per-indicator figures over places (client_core::coverage::summarize), leaving out indicators no place counts for. */
export function summarize(rules, places, rural) {
  const figures = rules.indicators.map((ind) => ({ indicator: ind.id, eligible: 0, reached: 0, excluded: 0 }));
  for (const p of places) {
    rules.indicators.forEach((ind, i) => {
      if (!(rural ? ind.eligible_rural : ind.eligible_urban).includes(p.kind)) return;
      const f = figures[i];
      if (p.cov.excluded) f.excluded += 1;
      else {
        f.eligible += 1;
        if (p.cov.reached.includes(ind.id)) f.reached += 1;
      }
    });
  }
  return figures.filter((f) => f.eligible + f.excluded > 0);
}

/** The fewest deliveries that reach every indicator a place is eligible for ("all done" in one tap). */
export function deliveriesForAll(rules, kind, rural) {
  let mask = 0;
  for (const ind of eligibleIndicators(rules, kind, rural)) {
    if (ind.reached_by.includes(mask)) continue;
    const single = rules.delivery_fields.map((_, i) => 1 << i).find((bit) => ind.reached_by.includes(mask | bit));
    mask |= single ?? Math.min(...ind.reached_by.filter((m) => m !== 0));
  }
  return rules.delivery_fields.filter((_, i) => mask & (1 << i));
}

/** Deliveries that matter at a place: those that, alone, reach one of its indicators. */
export function relevantDeliveries(rules, kind, rural) {
  const inds = eligibleIndicators(rules, kind, rural);
  return rules.delivery_fields.filter((_, i) => inds.some((ind) => ind.reached_by.includes(1 << i)));
}
