//! The built-in functions of AWS IoT SQL ("Functions" page of the AWS IoT
//! developer guide), resolved by name when a rule is created.
//!
//! Names are case-insensitive (`isNull`, `Round`). Functions that need
//! services Thingport does not embed (`aws_lambda`, `get_dynamodb`,
//! `get_secret`, `machinelearning_predict`, …) are rejected when the rule is
//! created, with a message saying so. `get_thing_shadow` asks the caller's
//! [`Env`](crate::Env); `newuuid`, `traceid`, `rand` and `accountid` too.
//!
//! Extensions beyond AWS: `isnumber`, `isstring`, `isboolean`, `isobject`
//! and `isarray` test a value's type.
//!
//! Each submodule documents the decisions it takes where the AWS tables are
//! ambiguous.

mod encoding;
mod hash;
mod math;
mod misc;
mod regexp;
mod string;
mod time;

use crate::ast::{CastType, Expr};
use crate::eval::Scope;
use crate::value::Value;

pub(crate) use regexp::compile_regex;

macro_rules! functions {
    ($($variant:ident = $name:literal ($min:expr, $max:expr), $doc:literal;)*) => {
        /// A built-in function.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Func {
            $(#[doc = $doc] $variant,)*
        }

        const TABLE: &[(&str, Func, usize, Option<usize>)] = &[$(($name, Func::$variant, $min, $max),)*];
    };
}

const MANY: Option<usize> = None;

functions! {
    Abs = "abs" (1, Some(1)), "`abs(x)`: absolute value.";
    AccountId = "accountid" (0, Some(0)), "`accountid()`: the account that owns the rule (from the `Env`).";
    Acos = "acos" (1, Some(1)), "`acos(x)`: inverse cosine.";
    Asin = "asin" (1, Some(1)), "`asin(x)`: inverse sine.";
    Atan = "atan" (1, Some(1)), "`atan(x)`: inverse tangent.";
    Atan2 = "atan2" (2, Some(2)), "`atan2(y, x)`: angle of the point (x, y).";
    BitAnd = "bitand" (2, Some(2)), "`bitand(a, b)`: bitwise AND.";
    BitOr = "bitor" (2, Some(2)), "`bitor(a, b)`: bitwise OR.";
    BitXor = "bitxor" (2, Some(2)), "`bitxor(a, b)`: bitwise XOR.";
    BitNot = "bitnot" (1, Some(1)), "`bitnot(a)`: bitwise NOT.";
    Ceil = "ceil" (1, Some(1)), "`ceil(x)`: round up to an Int.";
    Chr = "chr" (1, Some(1)), "`chr(n)`: the ASCII character n.";
    ClientId = "clientid" (0, Some(0)), "`clientid()`: the publishing client's id, or `n/a`.";
    Concat = "concat" (0, MANY), "`concat(…)`: concatenates strings or arrays.";
    Cos = "cos" (1, Some(1)), "`cos(x)`: cosine.";
    Cosh = "cosh" (1, Some(1)), "`cosh(x)`: hyperbolic cosine.";
    Decode = "decode" (2, Some(2)), "`decode(s, 'base64')`: decodes, parsing JSON when it is JSON.";
    Encode = "encode" (2, Some(2)), "`encode(x, 'base64')`: encodes a value or the payload (`*`).";
    EndsWith = "endswith" (2, Some(2)), "`endswith(s, suffix)`.";
    Exp = "exp" (1, Some(1)), "`exp(x)`: e to the power x.";
    Floor = "floor" (1, Some(1)), "`floor(x)`: round down to an Int.";
    Get = "get" (2, Some(2)), "`get(collection, key)`: array element, string character or object member.";
    GetThingShadow = "get_thing_shadow" (2, Some(3)), "`get_thing_shadow(thing, [shadow,] roleArn)`.";
    IndexOf = "indexof" (2, Some(2)), "`indexof(s, sub)`: first index of `sub` in `s`, or -1.";
    IsArray = "isarray" (1, Some(1)), "`isarray(x)` (extension).";
    IsBoolean = "isboolean" (1, Some(1)), "`isboolean(x)` (extension).";
    IsNull = "isnull" (1, Some(1)), "`isnull(x)`.";
    IsNumber = "isnumber" (1, Some(1)), "`isnumber(x)` (extension).";
    IsObject = "isobject" (1, Some(1)), "`isobject(x)` (extension).";
    IsString = "isstring" (1, Some(1)), "`isstring(x)` (extension).";
    IsUndefined = "isundefined" (1, Some(1)), "`isundefined(x)`.";
    Length = "length" (1, Some(1)), "`length(s)`: number of characters.";
    Ln = "ln" (1, Some(1)), "`ln(x)`: natural logarithm.";
    Log = "log" (1, Some(1)), "`log(x)`: base-10 logarithm.";
    Lower = "lower" (1, Some(1)), "`lower(s)`.";
    Lpad = "lpad" (2, Some(2)), "`lpad(s, n)`: n spaces on the left.";
    Ltrim = "ltrim" (1, Some(1)), "`ltrim(s)`.";
    Md5 = "md5" (1, Some(1)), "`md5(s)`: hex digest.";
    Mod = "mod" (2, Some(2)), "`mod(a, b)`: remainder.";
    Nanvl = "nanvl" (2, Some(2)), "`nanvl(x, fallback)`.";
    NewUuid = "newuuid" (0, Some(0)), "`newuuid()`: a random UUID (from the `Env`).";
    NumBytes = "numbytes" (1, Some(1)), "`numbytes(s)`: UTF-8 length.";
    ParseTime = "parse_time" (2, Some(3)), "`parse_time(pattern, millis[, zone])`: formats a time.";
    Power = "power" (2, Some(2)), "`power(x, y)`.";
    Principal = "principal" (0, Some(0)), "`principal()`: the publisher's principal.";
    Rand = "rand" (0, Some(0)), "`rand()`: a number in [0, 1) (from the `Env`).";
    RegexpMatches = "regexp_matches" (2, Some(2)), "`regexp_matches(s, regex)`.";
    RegexpReplace = "regexp_replace" (3, Some(3)), "`regexp_replace(s, regex, replacement)`.";
    RegexpSubstr = "regexp_substr" (2, Some(2)), "`regexp_substr(s, regex)`: the first match.";
    Remainder = "remainder" (2, Some(2)), "`remainder(a, b)`: same as `mod`.";
    Replace = "replace" (3, Some(3)), "`replace(s, from, to)`: replaces every occurrence.";
    Round = "round" (1, Some(1)), "`round(x)`: nearest Int, halves away from zero.";
    Rpad = "rpad" (2, Some(2)), "`rpad(s, n)`: n spaces on the right.";
    Rtrim = "rtrim" (1, Some(1)), "`rtrim(s)`.";
    Sha1 = "sha1" (1, Some(1)), "`sha1(s)`: hex digest.";
    Sha224 = "sha224" (1, Some(1)), "`sha224(s)`: hex digest.";
    Sha256 = "sha256" (1, Some(1)), "`sha256(s)`: hex digest.";
    Sha384 = "sha384" (1, Some(1)), "`sha384(s)`: hex digest.";
    Sha512 = "sha512" (1, Some(1)), "`sha512(s)`: hex digest.";
    Sign = "sign" (1, Some(1)), "`sign(x)`: -1, 0 or 1.";
    Sin = "sin" (1, Some(1)), "`sin(x)`: sine.";
    Sinh = "sinh" (1, Some(1)), "`sinh(x)`: hyperbolic sine.";
    SqlVersion = "sql_version" (0, Some(0)), "`sql_version()`: `2016-03-23`.";
    Sqrt = "sqrt" (1, Some(1)), "`sqrt(x)`.";
    StartsWith = "startswith" (2, Some(2)), "`startswith(s, prefix)`.";
    Substring = "substring" (2, Some(3)), "`substring(s, start[, end])`: 0-based, end exclusive.";
    Tan = "tan" (1, Some(1)), "`tan(x)`: tangent.";
    Tanh = "tanh" (1, Some(1)), "`tanh(x)`: hyperbolic tangent.";
    TimeToEpoch = "time_to_epoch" (2, Some(2)), "`time_to_epoch(text, pattern)`: parses a time to milliseconds.";
    Timestamp = "timestamp" (0, Some(0)), "`timestamp()`: the message's time in milliseconds.";
    Topic = "topic" (0, Some(1)), "`topic([n])`: the topic, or its n-th level (1-based).";
    TraceId = "traceid" (0, Some(0)), "`traceid()`: the message's trace id (from the `Env`).";
    Transform = "transform" (3, Some(3)), "`transform('enrichArray', object, array)`.";
    Trim = "trim" (1, Some(1)), "`trim(s)`.";
    Trunc = "trunc" (2, Some(2)), "`trunc(x, places)`: truncates to decimal places.";
    Upper = "upper" (1, Some(1)), "`upper(s)`.";
}

/// Functions AWS documents that Thingport rejects, and why.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("aws_lambda", "Thingport does not run Lambda functions"),
    ("get_dynamodb", "Thingport has no DynamoDB"),
    ("get_secret", "Thingport has no Secrets Manager"),
    ("machinelearning_predict", "Thingport has no Amazon ML"),
    ("md2", "MD2 is obsolete"),
    ("get_registry_data", "registry lookups are not available to rules yet"),
    ("get_mqtt_property", "MQTT 5 properties are not available to rules yet"),
    ("get_user_properties", "MQTT 5 properties are not available to rules yet"),
    ("sourceip", "the source IP is not available to rules yet"),
];

/// The result of looking a function name up.
pub(crate) enum Lookup {
    Found(Func),
    Unsupported(&'static str),
    Unknown,
}

/// Looks up a lower-case function name.
pub(crate) fn lookup(name: &str) -> Lookup {
    if let Some((_, f, _, _)) = TABLE.iter().find(|(n, ..)| *n == name) {
        return Lookup::Found(*f);
    }
    match UNSUPPORTED.iter().find(|(n, _)| *n == name) {
        Some((_, why)) => Lookup::Unsupported(why),
        None => Lookup::Unknown,
    }
}

impl Func {
    fn entry(self) -> &'static (&'static str, Func, usize, Option<usize>) {
        TABLE.iter().find(|(_, f, ..)| *f == self).expect("every function is in the table")
    }

    /// The function's name, in lower case.
    pub fn name(self) -> &'static str {
        self.entry().0
    }

    /// The smallest and largest number of arguments (`None`: no limit).
    pub fn arity(self) -> (usize, Option<usize>) {
        let e = self.entry();
        (e.2, e.3)
    }

    /// Every function, in alphabetical order.
    pub fn all() -> impl Iterator<Item = Func> {
        TABLE.iter().map(|(_, f, ..)| *f)
    }

    /// The argument holding a regular expression, if any.
    pub(crate) fn regex_arg(self) -> Option<usize> {
        matches!(self, Func::RegexpMatches | Func::RegexpReplace | Func::RegexpSubstr).then_some(1)
    }
}

/// Calls `func` on unevaluated `args` (arity already checked by the parser).
pub(crate) fn call(scope: &Scope<'_>, func: Func, args: &[Expr], regex: Option<&regex::Regex>) -> Value {
    if func == Func::Encode {
        return encoding::encode(scope, args);
    }
    let v: Vec<Value> = args.iter().map(|a| scope.eval(a)).collect();
    let arg = |i: usize| v.get(i).unwrap_or(&Value::Undefined);
    match func {
        Func::Abs => math::abs(arg(0)),
        Func::Acos => math::double(arg(0), f64::acos),
        Func::Asin => math::double(arg(0), f64::asin),
        Func::Atan => math::double(arg(0), f64::atan),
        Func::Atan2 => math::double2(arg(0), arg(1), f64::atan2),
        Func::BitAnd => math::bits(arg(0), arg(1), |a, b| a & b),
        Func::BitOr => math::bits(arg(0), arg(1), |a, b| a | b),
        Func::BitXor => math::bits(arg(0), arg(1), |a, b| a ^ b),
        Func::BitNot => arg(0).to_int_floor().map_or(Value::Undefined, |a| Value::Int(!a)),
        Func::Ceil => math::to_int_with(arg(0), f64::ceil),
        Func::Floor => math::to_int_with(arg(0), f64::floor),
        Func::Round => math::to_int_with(arg(0), f64::round),
        Func::Chr => math::chr(arg(0)),
        Func::Cos => math::double(arg(0), f64::cos),
        Func::Cosh => math::double(arg(0), f64::cosh),
        Func::Exp => math::double(arg(0), f64::exp),
        Func::Ln => math::double(arg(0), f64::ln),
        Func::Log => math::double(arg(0), f64::log10),
        Func::Sin => math::double(arg(0), f64::sin),
        Func::Sinh => math::double(arg(0), f64::sinh),
        Func::Sqrt => math::double(arg(0), f64::sqrt),
        Func::Tan => math::double(arg(0), f64::tan),
        Func::Tanh => math::double(arg(0), f64::tanh),
        Func::Power => math::double2(arg(0), arg(1), f64::powf),
        Func::Mod | Func::Remainder => crate::eval::arith(crate::ast::BinaryOp::Mod, arg(0), arg(1)),
        Func::Sign => math::sign(arg(0)),
        Func::Trunc => math::trunc(arg(0), arg(1)),
        Func::Nanvl => math::nanvl(arg(0), arg(1)),

        Func::Concat => string::concat(v),
        Func::EndsWith => string::both_strings(arg(0), arg(1), |a, b| Value::Bool(a.ends_with(b))),
        Func::StartsWith => string::both_strings(arg(0), arg(1), |a, b| Value::Bool(a.starts_with(b))),
        Func::IndexOf => string::both_strings(arg(0), arg(1), string::index_of),
        Func::Length => string::map_string(arg(0), |s| Value::Int(s.chars().count() as i64)),
        Func::NumBytes => string::map_string(arg(0), |s| Value::Int(s.len() as i64)),
        Func::Lower => string::map_string(arg(0), |s| Value::String(s.to_lowercase())),
        Func::Upper => string::map_string(arg(0), |s| Value::String(s.to_uppercase())),
        Func::Trim => string::map_string(arg(0), |s| Value::String(s.trim_matches(string::is_space).to_string())),
        Func::Ltrim => {
            string::map_string(arg(0), |s| Value::String(s.trim_start_matches(string::is_space).to_string()))
        }
        Func::Rtrim => string::map_string(arg(0), |s| Value::String(s.trim_end_matches(string::is_space).to_string())),
        Func::Lpad => string::pad(arg(0), arg(1), true),
        Func::Rpad => string::pad(arg(0), arg(1), false),
        Func::Replace => string::replace(arg(0), arg(1), arg(2)),
        Func::Substring => string::substring(arg(0), arg(1), v.get(2)),

        Func::Decode => encoding::decode(arg(0), arg(1)),
        Func::Encode => Value::Undefined,
        Func::Md5 => hash::digest(arg(0), hash::Algorithm::Md5),
        Func::Sha1 => hash::digest(arg(0), hash::Algorithm::Sha1),
        Func::Sha224 => hash::digest(arg(0), hash::Algorithm::Sha224),
        Func::Sha256 => hash::digest(arg(0), hash::Algorithm::Sha256),
        Func::Sha384 => hash::digest(arg(0), hash::Algorithm::Sha384),
        Func::Sha512 => hash::digest(arg(0), hash::Algorithm::Sha512),

        Func::RegexpMatches => regexp::matches(arg(0), arg(1), regex),
        Func::RegexpReplace => regexp::replace(arg(0), arg(1), arg(2), regex),
        Func::RegexpSubstr => regexp::substr(arg(0), arg(1), regex),

        Func::ParseTime => time::parse_time(arg(0), arg(1), v.get(2)),
        Func::TimeToEpoch => time::time_to_epoch(arg(0), arg(1)),

        Func::Get => misc::get(arg(0), arg(1)),
        Func::IsNull => Value::Bool(matches!(arg(0), Value::Null)),
        Func::IsUndefined => Value::Bool(arg(0).is_undefined()),
        Func::IsNumber => Value::Bool(matches!(arg(0), Value::Int(_) | Value::Decimal(_))),
        Func::IsString => Value::Bool(matches!(arg(0), Value::String(_))),
        Func::IsBoolean => Value::Bool(matches!(arg(0), Value::Bool(_))),
        Func::IsObject => Value::Bool(matches!(arg(0), Value::Object(_))),
        Func::IsArray => Value::Bool(matches!(arg(0), Value::Array(_))),
        Func::Transform => misc::transform(arg(0), arg(1), arg(2)),
        Func::GetThingShadow => misc::get_thing_shadow(scope, &v),

        Func::Topic => misc::topic(scope.input.topic, v.first()),
        Func::ClientId => Value::String(scope.input.client_id.unwrap_or("n/a").to_string()),
        Func::Principal => scope.input.principal.map_or(Value::Undefined, Value::from),
        Func::Timestamp => Value::Int(scope.input.timestamp_ms),
        Func::NewUuid => Value::String(scope.env.new_uuid()),
        Func::TraceId => Value::String(scope.env.trace_id()),
        Func::Rand => Value::decimal(scope.env.random()),
        Func::AccountId => scope.env.account_id().map_or(Value::Undefined, Value::String),
        Func::SqlVersion => Value::from(crate::SQL_VERSION),
    }
}

/// `cast(v AS ty)` by the AWS casting tables.
pub(crate) fn cast(v: Value, ty: CastType) -> Value {
    use crate::value::Num;
    match ty {
        CastType::String => match v {
            Value::String(_) => v,
            other => other.to_sql_string().map_or(Value::Undefined, Value::String),
        },
        CastType::Int => match v {
            Value::Bool(b) => Value::Int(i64::from(b)),
            other => other.to_int_floor().map_or(Value::Undefined, Value::Int),
        },
        CastType::Decimal => match v {
            Value::Bool(b) => Value::Decimal(if b { 1.0 } else { 0.0 }),
            other => match other.to_num() {
                Some(Num::Int(i)) => Value::Decimal(i as f64),
                Some(Num::Dec(d)) => Value::decimal(d),
                None => Value::Undefined,
            },
        },
        CastType::Bool => match v {
            Value::Int(i) => Value::Bool(i != 0),
            Value::Decimal(d) => Value::Bool(d != 0.0),
            other => other.to_bool().map_or(Value::Undefined, Value::Bool),
        },
    }
}
