//! Property tests: the parser never panics on arbitrary text, printed trees
//! parse back to themselves, and evaluation never panics on random
//! expression trees and random payloads.

mod common;

use common::{input, TestEnv};
use proptest::prelude::*;
use rules::ast::{BinaryOp, CachedRegex, CastType, Expr, From, IsKind, Query, Select, SelectItem, UnaryOp};
use rules::functions::Func;
use rules::{Rule, Template, Value};

const KEYS: &[&str] = &["a", "b", "value", "temp", "my-key", "from", "e", "n", "v", "x_1", "Color", "not"];

fn key() -> impl Strategy<Value = String> {
    prop::sample::select(KEYS).prop_map(str::to_string)
}

fn literal() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (0i64..=i64::MAX).prop_map(Value::Int),
        (0.0f64..1e6).prop_filter("fractional", |f| f.fract() != 0.0).prop_map(Value::Decimal),
        "[a-z '\\\\\"\n%$é{}]{0,8}".prop_map(Value::String),
    ]
}

fn binary_op() -> impl Strategy<Value = BinaryOp> {
    prop::sample::select(vec![
        BinaryOp::And,
        BinaryOp::Or,
        BinaryOp::Eq,
        BinaryOp::Neq,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Mod,
        BinaryOp::Contains,
    ])
}

fn callable() -> impl Strategy<Value = Func> {
    let funcs: Vec<Func> =
        Func::all().filter(|f| !matches!(f, Func::RegexpMatches | Func::RegexpReplace | Func::RegexpSubstr)).collect();
    prop::sample::select(funcs)
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = prop_oneof![literal().prop_map(Expr::Literal), key().prop_map(Expr::Field)];
    leaf.prop_recursive(4, 48, 4, |inner| {
        prop_oneof![
            (inner.clone(), key()).prop_map(|(b, k)| Expr::Member(Box::new(b), k)),
            (inner.clone(), inner.clone()).prop_map(|(b, i)| Expr::Index(Box::new(b), Box::new(i))),
            prop::collection::vec(inner.clone(), 0..4).prop_map(Expr::Array),
            prop::collection::vec((key(), inner.clone()), 0..3).prop_map(Expr::Object),
            (any::<bool>(), inner.clone()).prop_map(|(neg, e)| {
                let numeric = matches!(e, Expr::Literal(Value::Int(_) | Value::Decimal(_)));
                let op = if neg && !numeric { UnaryOp::Neg } else { UnaryOp::Not };
                Expr::Unary(op, Box::new(e))
            }),
            (binary_op(), inner.clone(), inner.clone()).prop_map(|(op, l, r)| Expr::Binary(
                op,
                Box::new(l),
                Box::new(r)
            )),
            (inner.clone(), any::<bool>(), any::<bool>()).prop_map(|(e, negated, null)| Expr::Is {
                expr: Box::new(e),
                negated,
                kind: if null { IsKind::Null } else { IsKind::Undefined },
            }),
            (inner.clone(), prop::collection::vec(inner.clone(), 0..3), any::<bool>()).prop_map(|(e, l, negated)| {
                Expr::In { expr: Box::new(e), list: Box::new(Expr::Array(l)), negated }
            }),
            (
                prop::option::of(inner.clone()),
                prop::collection::vec((inner.clone(), inner.clone()), 1..3),
                prop::option::of(inner.clone())
            )
                .prop_map(|(operand, whens, otherwise)| Expr::Case {
                    operand: operand.map(Box::new),
                    whens,
                    otherwise: otherwise.map(Box::new),
                }),
            (callable(), prop::collection::vec(prop_oneof![9 => inner.clone(), 1 => Just(Expr::Star)], 0..4)).prop_map(
                |(func, mut args)| {
                    let (min, max) = func.arity();
                    while args.len() < min {
                        args.push(Expr::Literal(Value::Int(1)));
                    }
                    args.truncate(max.unwrap_or(args.len()));
                    Expr::Call { func, args, regex: CachedRegex::default() }
                }
            ),
            (
                inner.clone(),
                prop::sample::select(vec![CastType::String, CastType::Int, CastType::Decimal, CastType::Bool])
            )
                .prop_map(|(e, t)| Expr::Cast(Box::new(e), t)),
            (inner.clone(), inner.clone(), prop::option::of(inner.clone()), any::<bool>()).prop_map(
                |(sel, from, where_clause, value)| {
                    let select = if value {
                        Select::Value(sel)
                    } else {
                        Select::Items(vec![SelectItem::Expr { expr: sel, alias: Some(vec!["r".into()]) }])
                    };
                    Expr::Subquery(Box::new(Query { select, from: From::Expr(from), where_clause }))
                }
            ),
        ]
    })
}

fn select_item() -> impl Strategy<Value = SelectItem> {
    prop_oneof![
        1 => Just(SelectItem::Star),
        1 => expr().prop_map(SelectItem::AllOf),
        6 => (expr(), prop::option::of(prop::collection::vec(key(), 1..3)))
            .prop_map(|(expr, alias)| SelectItem::Expr { expr, alias }),
    ]
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop_oneof![
            1 => expr().prop_map(Select::Value),
            3 => prop::collection::vec(select_item(), 1..4).prop_map(Select::Items),
        ],
        prop::sample::select(vec!["#", "a/+", "a/b", "$aws/things/+/shadow/#"]),
        prop::option::of(expr()),
    )
        .prop_map(|(select, topic, where_clause)| Query {
            select,
            from: From::Topic(topic.to_string()),
            where_clause,
        })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(serde_json::Value::from),
        "[a-z0-9 ]{0,6}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn payload() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::collection::btree_map(key(), json_value(), 0..6)
            .prop_map(|m| serde_json::to_vec(&serde_json::Value::Object(m.into_iter().collect())).unwrap()),
        1 => json_value().prop_map(|j| serde_json::to_vec(&j).unwrap()),
        1 => prop::collection::vec(any::<u8>(), 0..32),
    ]
}

fn edgy_literal() -> impl Strategy<Value = Expr> {
    let numbers = prop::sample::select(vec![
        Value::Int(i64::MIN),
        Value::Int(i64::MAX),
        Value::Int(-1),
        Value::Int(0),
        Value::Int(1),
        Value::Int(13),
        Value::Int(1_481_825_251_155),
        Value::Decimal(-1e300),
        Value::Decimal(1e300),
        Value::Decimal(2.5),
        Value::Decimal(-0.5),
        Value::Decimal(5e-324),
    ]);
    let strings = prop::sample::select(vec![
        "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
        "EEEE, d MMMM yyyy G hh a z ZZ ZZZ VV D k K",
        "2020-04-03 09:45:18 UTC+01:00",
        "yyyy-MM-dd HH:mm:ss VV",
        "America/Los_Angeles",
        "Etc/GMT-14",
        "base64",
        "aGVsbG8=",
        "enrichArray",
        "$1$2\\",
        "(a)(b)?",
        "",
        "ä€𝄞",
        "true",
        "-12.5E3",
        "[1,2]",
    ]);
    prop_oneof![
        4 => numbers.prop_map(Expr::Literal),
        4 => strings.prop_map(|s| Expr::Literal(Value::from(s))),
        1 => Just(Expr::Literal(Value::Null)),
        1 => Just(Expr::Literal(Value::Bool(true))),
        1 => Just(Expr::Array(vec![Expr::Literal(Value::Int(1)), Expr::Object(vec![("k".into(), Expr::Literal(Value::Int(2)))])])),
        1 => Just(Expr::Object(vec![("a".into(), Expr::Literal(Value::from("b")))])),
        1 => Just(Expr::Field("missing".into())),
        1 => Just(Expr::Star),
    ]
}

const SOUP: &[&str] = &[
    "SELECT",
    "VALUE",
    "FROM",
    "WHERE",
    "AS",
    "AND",
    "OR",
    "NOT",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "IS",
    "IN",
    "NULL",
    "UNDEFINED",
    "CONTAINS",
    "*",
    ",",
    ".",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ":",
    "+",
    "-",
    "/",
    "%",
    "=",
    "<>",
    "<",
    ">=",
    "'a/#'",
    "'x'",
    "\"y\"",
    "1",
    "2.5",
    "a",
    "b",
    "topic",
    "cast",
    "Int",
    "`k`",
    "${",
    "'",
    "\"",
    "`",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(SOUP), 0..24).prop_map(|t| t.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(512),
        ..ProptestConfig::default()
    })]

    #[test]
    fn parser_never_panics_on_text(s in any::<String>()) {
        let _ = Rule::parse(&s);
        let _ = Template::parse(&s);
    }

    #[test]
    fn parser_never_panics_on_token_soup(s in soup()) {
        if let Ok(rule) = Rule::parse(&s) {
            // Whatever parses prints to SQL that parses to the same tree.
            let again = Rule::parse(&rule.to_string()).unwrap();
            prop_assert_eq!(again, rule);
        }
        let _ = Template::parse(&s);
    }

    #[test]
    fn printed_trees_parse_back(q in query()) {
        let sql = q.to_string();
        let rule = Rule::parse(&sql).map_err(|e| TestCaseError::fail(format!("{sql}\n{e}")))?;
        prop_assert_eq!(rule.query(), &q, "{}", sql);
    }

    #[test]
    fn evaluation_never_panics(q in query(), p in payload(), topic in "[a-z$/]{0,12}") {
        let rule = Rule::parse(&q.to_string()).unwrap();
        if let Some(out) = rule.evaluate(&input(&topic, &p), &TestEnv) {
            let _ = out.to_bytes();
        }
        let template = Template::parse(&format!("x/${{{}}}/y", expr_of(&q))).unwrap();
        let _ = template.render(&input(&topic, &p), &TestEnv);
    }

    #[test]
    fn functions_never_panic(
        (func, args) in prop::sample::select(Func::all().collect::<Vec<_>>()).prop_flat_map(|func| {
            let (min, max) = func.arity();
            (Just(func), prop::collection::vec(edgy_literal(), min..=max.unwrap_or(min + 3)))
        }),
        p in payload(),
    ) {
        let call = Expr::Call { func, args, regex: CachedRegex::default() };
        // Some literal patterns are refused when the rule is created.
        if let Ok(rule) = Rule::parse(&format!("SELECT VALUE {call} FROM '#'")) {
            if let Some(out) = rule.evaluate(&input("a/b/c", &p), &TestEnv) {
                let _ = out.to_bytes();
            }
        }
    }

    #[test]
    fn select_star_passes_json_objects(p in prop::collection::btree_map(key(), json_value(), 0..6)) {
        let doc = serde_json::Value::Object(p.into_iter().collect());
        let bytes = serde_json::to_vec(&doc).unwrap();
        let rule = Rule::parse("SELECT * FROM '#'").unwrap();
        let out = rule.evaluate(&input("t", &bytes), &TestEnv).unwrap();
        let j = out.as_json().unwrap();
        // The same document (whole floats may have become integers);
        // compared with serde_json's own reading of the bytes.
        let reread: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(Value::from_json(j).sql_eq(&Value::from_json(&reread)), Some(true));
    }

    #[test]
    fn select_star_passes_binary_unchanged(p in prop::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(serde_json::from_slice::<serde_json::Value>(&p).map(|j| !j.is_object()).unwrap_or(true));
        let rule = Rule::parse("SELECT * FROM '#'").unwrap();
        prop_assert_eq!(rule.evaluate(&input("t", &p), &TestEnv).unwrap().to_bytes(), p);
    }
}

/// Some expression of a query, for the template check.
fn expr_of(q: &Query) -> String {
    match &q.select {
        Select::Value(e) => e.to_string(),
        Select::Items(items) => items
            .iter()
            .find_map(|i| match i {
                SelectItem::Expr { expr, .. } | SelectItem::AllOf(expr) => Some(expr.to_string()),
                SelectItem::Star => None,
            })
            .unwrap_or_else(|| "topic()".to_string()),
    }
}
