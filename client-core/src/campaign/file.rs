//! Reading a campaign definition file (TOML): every mistake is reported with its line, the field and what is
//! wrong, all at once, so the office fixes a file in one pass.

use super::{Campaign, Count, DeliveryDef, IndicatorDef, PlaceKindDef, Reach, Setting};
use crate::grid::model::MAX_TEXT_BYTES;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;
use toml::Spanned;

/// Most deliveries one campaign may define (a visit's deliveries are kept as a 64-bit set when counting).
pub const MAX_DELIVERIES: usize = 64;
/// Visit fields that are not deliveries: a delivery may not take one of these ids.
pub const RESERVED_VISIT_FIELDS: &[&str] =
    &["id", "place", "volunteer", "device", "at", "outcome", "note", "lat", "lon", "photos", "photos_rejected"];

/// One problem in a definition file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line of the file; 0 when the problem concerns the whole file.
    pub line: usize,
    /// Where in the definition, e.g. `indicator "poster" counts[1].kinds`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(f, "line {}: ", self.line)?;
        }
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}

/// Every problem found in a definition file, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Problems(pub Vec<Problem>);

impl fmt::Display for Problems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(f, "the campaign definition has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.0 {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCampaign {
    name_zh: Spanned<String>,
    name_en: Spanned<String>,
    #[serde(default)]
    place_kind: Vec<Spanned<FileKind>>,
    #[serde(default)]
    delivery: Vec<Spanned<FileDelivery>>,
    #[serde(default)]
    indicator: Vec<Spanned<FileIndicator>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileKind {
    id: Spanned<String>,
    zh: Spanned<String>,
    en: Spanned<String>,
    #[serde(default)]
    words: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDelivery {
    id: Spanned<String>,
    zh: Spanned<String>,
    en: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileIndicator {
    id: Spanned<String>,
    zh: Spanned<String>,
    en: Spanned<String>,
    counts: Spanned<Vec<Spanned<FileCount>>>,
    reached_by: Spanned<FileReach>,
    #[serde(default)]
    target: Option<Spanned<u32>>,
    #[serde(default)]
    photo_required: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileCount {
    kinds: Spanned<Vec<Spanned<String>>>,
    #[serde(default)]
    setting: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReach {
    #[serde(default)]
    any_of: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    all_of: Option<Vec<Spanned<String>>>,
}

/// Reads and checks a definition file. Nothing is returned unless the whole file is right.
pub fn parse(text: &str) -> Result<Campaign, Problems> {
    let lines = LineIndex::new(text);
    let file: FileCampaign = toml::from_str(text).map_err(|e| {
        let line = e.span().map(|s| lines.line(s.start)).unwrap_or(0);
        Problems(vec![Problem { line, field: String::new(), message: e.message().to_string() }])
    })?;
    let mut check = Checker { lines: &lines, problems: Vec::new() };
    let campaign = check.campaign(file);
    if check.problems.is_empty() {
        Ok(campaign)
    } else {
        // Problems of the whole file come after those with a line.
        check.problems.sort_by_key(|p| if p.line == 0 { usize::MAX } else { p.line });
        Err(Problems(check.problems))
    }
}

struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        LineIndex { starts: std::iter::once(0).chain(text.match_indices('\n').map(|(i, _)| i + 1)).collect() }
    }

    fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

struct Checker<'a> {
    lines: &'a LineIndex,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn problem(&mut self, span: Range<usize>, field: impl Into<String>, message: impl Into<String>) {
        let line = if span == (0..0) { 0 } else { self.lines.line(span.start) };
        self.problems.push(Problem { line, field: field.into(), message: message.into() });
    }

    fn id(&mut self, what: &str, id: &Spanned<String>) -> String {
        let s = id.get_ref();
        if !super::is_id(s) {
            self.problem(
                id.span(),
                format!("{what} id"),
                format!("{s:?} is not an id: use 1 to 40 lowercase letters, digits and _, starting with a letter"),
            );
        }
        s.clone()
    }

    fn name(&mut self, field: String, name: &Spanned<String>) -> String {
        let s = name.get_ref().trim();
        if s.is_empty() {
            self.problem(name.span(), field, "is empty");
        } else if s.len() > MAX_TEXT_BYTES {
            self.problem(name.span(), field, format!("is longer than {MAX_TEXT_BYTES} bytes"));
        }
        s.to_string()
    }

    fn unique(&mut self, seen: &mut BTreeSet<String>, what: &str, id: &Spanned<String>) {
        if !seen.insert(id.get_ref().clone()) {
            self.problem(id.span(), format!("{what} id"), format!("{:?} is defined twice", id.get_ref()));
        }
    }

    fn campaign(&mut self, file: FileCampaign) -> Campaign {
        let name_zh = self.name("name_zh".into(), &file.name_zh);
        let name_en = self.name("name_en".into(), &file.name_en);
        let place_kinds = self.kinds(&file.place_kind);
        let deliveries = self.deliveries(&file.delivery);
        let kind_ids: BTreeSet<&str> = place_kinds.iter().map(|k| k.id.as_str()).collect();
        let delivery_ids: BTreeSet<&str> = deliveries.iter().map(|d| d.id.as_str()).collect();
        let mut seen = BTreeSet::new();
        let mut indicators = Vec::new();
        for ind in &file.indicator {
            self.unique(&mut seen, "indicator", &ind.get_ref().id);
            indicators.push(self.indicator(ind, &kind_ids, &delivery_ids));
        }
        if file.indicator.is_empty() {
            self.problem(0..0, "indicator", "the campaign defines no indicator: add at least one [[indicator]]");
        }
        Campaign { name_zh, name_en, place_kinds, deliveries, indicators }
    }

    fn kinds(&mut self, kinds: &[Spanned<FileKind>]) -> Vec<PlaceKindDef> {
        if kinds.is_empty() {
            self.problem(0..0, "place_kind", "the campaign defines no place kind: add at least one [[place_kind]]");
        }
        let mut seen = BTreeSet::new();
        // Every word a territory file may use for a kind must name one kind only.
        let mut words: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for k in kinds {
            let k = k.get_ref();
            let id = self.id("place kind", &k.id);
            self.unique(&mut seen, "place kind", &k.id);
            let field = |f: &str| format!("place kind {id:?} {f}");
            let zh = self.name(field("zh"), &k.zh);
            let en = self.name(field("en"), &k.en);
            let mut extra = Vec::new();
            for w in &k.words {
                extra.push(self.name(field("words"), w));
            }
            let spans = std::iter::once((id.clone(), k.id.span()))
                .chain([(zh.clone(), k.zh.span())])
                .chain(extra.iter().cloned().zip(k.words.iter().map(|w| w.span())));
            for (word, span) in spans {
                let key = word.to_lowercase();
                match words.get(&key) {
                    Some(other) if *other != id => {
                        self.problem(span, field("words"), format!("{word:?} already names place kind {other:?}"))
                    }
                    _ => {
                        words.insert(key, id.clone());
                    }
                }
            }
            out.push(PlaceKindDef { id, zh, en, words: extra });
        }
        out
    }

    fn deliveries(&mut self, deliveries: &[Spanned<FileDelivery>]) -> Vec<DeliveryDef> {
        if deliveries.len() > MAX_DELIVERIES {
            self.problem(
                deliveries[MAX_DELIVERIES].span(),
                "delivery",
                format!("a campaign may define at most {MAX_DELIVERIES} deliveries"),
            );
        }
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for d in deliveries {
            let d = d.get_ref();
            let id = self.id("delivery", &d.id);
            self.unique(&mut seen, "delivery", &d.id);
            if RESERVED_VISIT_FIELDS.contains(&id.as_str()) {
                self.problem(
                    d.id.span(),
                    "delivery id",
                    format!("{id:?} is a field every visit has; choose another id"),
                );
            }
            let zh = self.name(format!("delivery {id:?} zh"), &d.zh);
            let en = self.name(format!("delivery {id:?} en"), &d.en);
            out.push(DeliveryDef { id, zh, en });
        }
        out
    }

    fn indicator(
        &mut self,
        ind: &Spanned<FileIndicator>,
        kind_ids: &BTreeSet<&str>,
        delivery_ids: &BTreeSet<&str>,
    ) -> IndicatorDef {
        let i = ind.get_ref();
        let id = self.id("indicator", &i.id);
        let field = |f: &str| format!("indicator {id:?} {f}");
        let zh = self.name(field("zh"), &i.zh);
        let en = self.name(field("en"), &i.en);
        let mut counts = Vec::new();
        if i.counts.get_ref().is_empty() {
            self.problem(i.counts.span(), field("counts"), "is empty: name the place kinds this indicator counts");
        }
        for (n, c) in i.counts.get_ref().iter().enumerate() {
            let c = c.get_ref();
            let mut kinds = Vec::new();
            if c.kinds.get_ref().is_empty() {
                self.problem(c.kinds.span(), field(&format!("counts[{n}].kinds")), "is empty");
            }
            for k in c.kinds.get_ref() {
                if !kind_ids.contains(k.get_ref().as_str()) {
                    self.problem(
                        k.span(),
                        field(&format!("counts[{n}].kinds")),
                        format!("unknown place kind {:?}; the campaign's kinds are: {}", k.get_ref(), list(kind_ids)),
                    );
                }
                kinds.push(k.get_ref().clone());
            }
            let setting = match &c.setting {
                None => Setting::Any,
                Some(s) => match s.get_ref().as_str() {
                    "any" => Setting::Any,
                    "village" => Setting::Village,
                    "community" => Setting::Community,
                    other => {
                        self.problem(
                            s.span(),
                            field(&format!("counts[{n}].setting")),
                            format!("{other:?} is not a setting; use \"any\", \"village\" or \"community\""),
                        );
                        Setting::Any
                    }
                },
            };
            counts.push(Count { kinds, setting });
        }
        let reach = i.reached_by.get_ref();
        let (reached_by, ids) = match (&reach.any_of, &reach.all_of) {
            (Some(ids), None) => (Reach::AnyOf(ids.iter().map(|s| s.get_ref().clone()).collect()), ids),
            (None, Some(ids)) => (Reach::AllOf(ids.iter().map(|s| s.get_ref().clone()).collect()), ids),
            _ => {
                self.problem(
                    i.reached_by.span(),
                    field("reached_by"),
                    "give exactly one of any_of = [...] or all_of = [...]",
                );
                (Reach::AnyOf(Vec::new()), &Vec::new())
            }
        };
        if ids.is_empty() && (reach.any_of.is_some() != reach.all_of.is_some()) {
            self.problem(
                i.reached_by.span(),
                field("reached_by"),
                "no delivery can reach this indicator: the list is empty",
            );
        }
        for d in ids {
            if !delivery_ids.contains(d.get_ref().as_str()) {
                self.problem(
                    d.span(),
                    field("reached_by"),
                    format!(
                        "unknown delivery {:?}; the campaign's deliveries are: {}",
                        d.get_ref(),
                        list(delivery_ids)
                    ),
                );
            }
        }
        let target = i.target.as_ref().map_or(100, |t| *t.get_ref());
        if let Some(t) = i.target.as_ref().filter(|_| !(1..=100).contains(&target)) {
            self.problem(t.span(), field("target"), format!("{target} is not a percentage from 1 to 100"));
        }
        IndicatorDef { id, zh, en, counts, reached_by, target, photo_required: i.photo_required }
    }
}

fn list(ids: &BTreeSet<&str>) -> String {
    if ids.is_empty() {
        "(none)".into()
    } else {
        ids.iter().copied().collect::<Vec<_>>().join(", ")
    }
}
