//! The default campaign file counts exactly as the rules it replaces; bad files are refused with every
//! problem's line and field.

use super::*;
use crate::grid::model::{Deliveries, PlaceKind, ALWAYS_RECORDED};

/// The rules as they were written in Rust before campaigns were data: (id, Chinese, English, eligible, reached).
type Builtin = (&'static str, &'static str, &'static str, fn(PlaceKind, bool) -> bool, fn(&[bool; 5]) -> bool);
const BUILTIN: [Builtin; 5] = {
    use PlaceKind as K;
    [
        ("handbook", "宣传手册发放", "Handbook delivered", |k, _| matches!(k, K::Household | K::Shop), |d| d[0]),
        ("awareness", "知晓率", "Residents briefed", |k, _| matches!(k, K::Household | K::Shop), |d| d[1]),
        (
            "poster",
            "海报张贴",
            "Poster posted",
            |k, rural| matches!(k, K::Building | K::StreetBlock) || (k == K::Household && rural),
            |d| d[2],
        ),
        (
            "banner",
            "横幅悬挂",
            "Banner hung",
            |k, _| matches!(k, K::Market | K::PedestrianStreet | K::ScenicSpot | K::ResidentialComplex),
            |d| d[3],
        ),
        ("led", "LED屏播放", "LED screen playing", |k, _| k == K::LedScreen, |d| d[4]),
    ]
};

#[test]
fn the_default_campaign_counts_exactly_as_the_built_in_rules() {
    let c = Campaign::default_campaign();
    assert_eq!(c.indicators.len(), BUILTIN.len());
    assert_eq!(c.deliveries.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ALWAYS_RECORDED);
    let kinds: Vec<&str> = c.place_kinds.iter().map(|k| k.id.as_str()).collect();
    assert_eq!(kinds, PlaceKind::ALL.iter().map(|k| k.id()).collect::<Vec<_>>());
    for (def, (id, zh, en, eligible, reached)) in c.indicators.iter().zip(BUILTIN) {
        assert_eq!((def.id.as_str(), def.zh.as_str(), def.en.as_str()), (id, zh, en));
        for kind in PlaceKind::ALL {
            assert_eq!(PlaceKind::named(c, kind.zh()), Ok(*kind));
            for rural in [true, false] {
                assert_eq!(Campaign::is_eligible(def, *kind, rural), eligible(*kind, rural), "{id} {kind} {rural}");
            }
        }
        for mask in 0..32u8 {
            let flags: [bool; 5] = std::array::from_fn(|i| mask & (1 << i) != 0);
            let d = Deliveries::of(ALWAYS_RECORDED.iter().zip(flags).filter(|(_, on)| *on).map(|(id, _)| *id));
            assert_eq!(Campaign::is_reached_by(def, &d), reached(&flags), "{id} {mask}");
        }
        assert_eq!((def.target, def.photo_required), (100, false));
    }
}

#[test]
fn the_two_cards_example_adds_a_kind_a_delivery_and_an_indicator() {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/campaigns/two-cards.toml")).unwrap();
    let next = parse(&text).unwrap();
    let changes = Campaign::default_campaign().changes_to(&next);
    assert_eq!(changes.indicators_added, ["two_cards"]);
    assert_eq!(changes.kinds_added, ["outlet"]);
    assert_eq!(changes.deliveries_added, ["two_cards_notice"]);
    assert!(changes.indicators_removed.is_empty() && changes.indicators_changed.is_empty());
    let outlets: Vec<_> = changes.recount.keys().collect();
    assert_eq!(outlets, [&("outlet".to_string(), false), &("outlet".to_string(), true)]);
    assert_eq!(next.kind_named("通信营业厅").unwrap().id, "outlet");
    assert!(next.indicator("two_cards").unwrap().photo_required);
    assert!(Campaign::default_campaign().changes_to(Campaign::default_campaign()).is_empty());
}

#[test]
fn the_docs_show_both_files_whole() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/campaigns.md")).unwrap();
    let example =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/campaigns/two-cards.toml")).unwrap();
    assert!(doc.contains(DEFAULT_TOML), "docs/campaigns.md must hold the default campaign file as shipped");
    assert!(doc.contains(&example), "docs/campaigns.md must hold docs/campaigns/two-cards.toml as it is");
}

fn problems(text: &str) -> Vec<String> {
    parse(text).unwrap_err().0.iter().map(|p| p.to_string()).collect()
}

const SMALL: &str = r#"name_zh = "测试"
name_en = "Test"

[[place_kind]]
id = "shop"
zh = "门店"
en = "Shop"

[[delivery]]
id = "flyer"
zh = "传单"
en = "Flyer"
"#;

#[test]
fn each_problem_is_named_with_its_line_and_field() {
    let text = format!(
        "{SMALL}
[[indicator]]
id = \"flyers\"
zh = \"传单\"
en = \"Flyers\"
counts = [{{ kinds = [\"shop\", \"castle\"] }}]
reached_by = {{ any_of = [\"leaflet\"] }}

[[indicator]]
id = \"flyers\"
zh = \"传单二\"
en = \"Flyers again\"
counts = [{{ kinds = [\"shop\"], setting = \"suburb\" }}]
reached_by = {{ all_of = [] }}
target = 150
"
    );
    assert_eq!(
        problems(&text),
        [
            "line 18: indicator \"flyers\" counts[0].kinds: unknown place kind \"castle\"; the campaign's kinds are: shop",
            "line 19: indicator \"flyers\" reached_by: unknown delivery \"leaflet\"; the campaign's deliveries are: flyer",
            "line 22: indicator id: \"flyers\" is defined twice",
            "line 25: indicator \"flyers\" counts[0].setting: \"suburb\" is not a setting; use \"any\", \"village\" or \"community\"",
            "line 26: indicator \"flyers\" reached_by: no delivery can reach this indicator: the list is empty",
            "line 27: indicator \"flyers\" target: 150 is not a percentage from 1 to 100",
        ]
    );
}

#[test]
fn ids_names_and_words_are_checked() {
    let text = r#"name_zh = ""
name_en = "Test"

[[place_kind]]
id = "Shop"
zh = "门店"
en = "Shop"

[[place_kind]]
id = "stall"
zh = "摊位"
en = "Stall"
words = ["门店"]

[[delivery]]
id = "note"
zh = "备注"
en = "Note"
"#;
    assert_eq!(
        problems(text),
        [
            "line 1: name_zh: is empty",
            "line 5: place kind id: \"Shop\" is not an id: use 1 to 40 lowercase letters, digits and _, starting with a letter",
            "line 13: place kind \"stall\" words: \"门店\" already names place kind \"Shop\"",
            "line 16: delivery id: \"note\" is a field every visit has; choose another id",
            "indicator: the campaign defines no indicator: add at least one [[indicator]]",
        ]
    );
}

#[test]
fn syntax_errors_and_unknown_fields_name_their_line() {
    let p = problems(&format!("{SMALL}\n[[indicator]]\nid = \"x\"\nzh = \"x\"\nen = \"x\"\ncount = []\n"));
    assert_eq!(p.len(), 1);
    assert!(p[0].starts_with("line 18: unknown field `count`"), "{p:?}");
    let p = problems("name_zh = \"a\nname_en = 1\n");
    assert!(p[0].starts_with("line 1: "), "{p:?}");
    let whole = parse("name_zh = 1").unwrap_err().to_string();
    assert!(whole.starts_with("the campaign definition has 1 problem:\n  line 1: "), "{whole}");
}

#[test]
fn a_campaign_travels_as_json_and_reads_back_the_same() {
    let c = Campaign::default_campaign();
    let json = serde_json::to_string(c).unwrap();
    assert!(json.contains(r#""reached_by":{"any_of":["poster"]}"#), "{json}");
    assert!(json.contains(r#""setting":"village""#), "{json}");
    assert_eq!(&serde_json::from_str::<Campaign>(&json).unwrap(), c);
}
