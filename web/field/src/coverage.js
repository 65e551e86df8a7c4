// Coverage of places and grids, evaluated from the rules table the server derives from the campaign in force
// and client-core's coverage rules (served as rules.json). Nothing about the campaign is written here: which
// kinds count for an indicator, which deliveries reach it and which outcomes exclude or call for a revisit all
// come from the table; this file only mirrors how client_core::coverage combines them.
import { deliveriesOf } from "./grid.js";

/** "Which came last": by time, then by visit id (UUID v7), as on every replica. */
const later = (a, b) => (b.at > a.at || (b.at === a.at && b.id > a.id) ? b : a);

/** The deliveries that reach an indicator, whichever way it is reached. */
const reachIds = (ind) => ind.reached_by.any_of ?? ind.reached_by.all_of ?? [];

/**
 * Whether deliveries (`has(id)` tells which were made) reach an indicator: one of `any_of`, or every one of
 * `all_of` (Campaign::is_reached_by).
 */
function reaches(ind, has) {
  const { any_of: any, all_of: all } = ind.reached_by;
  return any ? any.some(has) : (all ?? []).every(has);
}

/** Whether one of a visit's photos still stands as evidence: one the office did not reject (Visit::has_accepted_photo). */
export const hasAcceptedPhoto = (visit) => (visit.photos || []).some((p) => !p.rejected);

/**
 * Whether one visit reaches an indicator: it delivered what reaches it and, where the indicator asks for a photo,
 * one of its photos stands (Campaign::is_reached_by_visit).
 */
const visitReaches = (ind, visit) => reaches(ind, (id) => visit[id] === true) && (!ind.photo_required || hasAcceptedPhoto(visit));

/** The indicators of a place that ask for a photo (the visit screen says so by the camera button). */
export const photoIndicators = (rules, kind, rural) => eligibleIndicators(rules, kind, rural).filter((ind) => ind.photo_required);

export function eligibleIndicators(rules, kind, rural) {
  return rules.indicators.filter((ind) => (rural ? ind.eligible_rural : ind.eligible_urban).includes(kind));
}

/** The state of one place given its visits (client_core::coverage::place_coverage). */
export function placeCoverage(rules, kind, rural, visits) {
  const last = visits.length ? visits.reduce(later) : null;
  const excluded = !!last && rules.excluding_outcomes.includes(last.outcome);
  const reached = [];
  const missing = [];
  for (const ind of eligibleIndicators(rules, kind, rural)) {
    (visits.some((v) => visitReaches(ind, v)) ? reached : missing).push(ind.id);
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

/** Delivery ids in the campaign's display order; any the campaign no longer has (an older visit's) last. */
export function inDisplayOrder(rules, ids) {
  const order = (id) => {
    const i = rules.deliveries.findIndex((d) => d.id === id);
    return i < 0 ? rules.deliveries.length : i;
  };
  return [...ids].sort((a, b) => order(a) - order(b));
}

/** A visit's deliveries in the campaign's display order. */
export const visitDeliveries = (rules, visit) => inDisplayOrder(rules, deliveriesOf(visit));

/**
 * The fewest deliveries that reach every indicator a place is eligible for ("all done" in one tap), taken
 * indicator by indicator: one already chosen may do; else the first of an `any_of` in display order, or every
 * missing one of an `all_of`.
 */
export function deliveriesForAll(rules, kind, rural) {
  const chosen = new Set();
  const has = (id) => chosen.has(id);
  for (const ind of eligibleIndicators(rules, kind, rural)) {
    if (reaches(ind, has)) continue;
    const { any_of: any, all_of: all } = ind.reached_by;
    for (const id of any ? inDisplayOrder(rules, any).slice(0, 1) : all ?? []) chosen.add(id);
  }
  return inDisplayOrder(rules, chosen);
}

/** Deliveries that matter at a place: those that reach one of its indicators, alone or with others. */
export function relevantDeliveries(rules, kind, rural) {
  const ids = new Set(eligibleIndicators(rules, kind, rural).flatMap(reachIds));
  return rules.deliveries.map((d) => d.id).filter((id) => ids.has(id));
}
