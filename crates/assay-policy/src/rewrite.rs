//! Rego source rewrites that make regorus read a policy as OPA does, where regorus's parser or a
//! builtin departs from OPA (docs/compatibility.md). Each works on tokens (strings, raw strings
//! and comments are never touched by mistake) and keeps every line where it was, so that
//! diagnostics name the line the author wrote:
//!
//! - **G1**: in a body, an expression that starts with `(` on a new line is a new expression,
//!   not a call of the previous line's last term: a `;` is put at the end of that line.
//! - **G2**: `sprintf` with a literal format and a literal array holding fewer values than the
//!   format has verbs: each verb with no value becomes the text Go's `fmt` prints for it
//!   (`%!v(MISSING)`), as OPA does.
//! - **G3**: a Rego v0 rule with several bodies (`s[x] { … } { … }`): each further body gets the
//!   rule's head, which makes it the separate rule OPA takes it for.
//! - **G4**: `not f(x.y)`: OPA's compiler moves a reference out of a negated call, so that an
//!   undefined argument makes the body undefined rather than the negation true. Each argument
//!   that is a reference is bound to a fresh variable just before the `not`
//!   (`__assay_not0 := x.y; not f(__assay_not0)`), on the same line.

use std::borrow::Cow;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Ident,
    Number,
    Str,
    Punct,
    Newline,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: Kind,
    start: usize,
    end: usize,
}

/// Splits Rego source into tokens; comments and spaces are dropped, newlines kept.
fn tokens(text: &str) -> Vec<Token> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            b'\n' => {
                i += 1;
                Kind::Newline
            }
            b' ' | b'\t' | b'\r' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' => {
                i += 1;
                while i < b.len() && b[i] != b'"' && b[i] != b'\n' {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
                i = (i + 1).min(b.len());
                Kind::Str
            }
            b'`' => {
                i += 1;
                while i < b.len() && b[i] != b'`' {
                    i += 1;
                }
                i = (i + 1).min(b.len());
                Kind::Str
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                Kind::Ident
            }
            c if c.is_ascii_digit() => {
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.') {
                    i += 1;
                }
                Kind::Number
            }
            _ => {
                let two = text.get(i..i + 2).unwrap_or("");
                i += if matches!(two, ":=" | "==" | "!=" | "<=" | ">=") {
                    2
                } else {
                    text[i..].chars().next().map_or(1, char::len_utf8)
                };
                Kind::Punct
            }
        };
        out.push(Token { kind, start, end: i.min(b.len()) });
    }
    out
}

/// Words after which a `{` opens a body, or before which a newline does not end an expression.
const KEYWORDS: [&str; 12] =
    ["if", "else", "not", "some", "in", "with", "as", "contains", "default", "import", "package", "every"];

/// Rewrites `text` where regorus would read it differently from OPA; borrowed when nothing
/// needs rewriting.
pub fn for_regorus(text: &str, v0: bool) -> Cow<'_, str> {
    let toks = tokens(text);
    let src = |t: &Token| &text[t.start..t.end];
    let is_keyword = |t: &Token| t.kind == Kind::Ident && KEYWORDS.contains(&src(t));
    // Insertions: (byte offset, text), applied from the end.
    let mut edits: Vec<(usize, usize, String)> = Vec::new();
    // Open brackets: (byte, whether newlines separate expressions inside).
    let mut stack: Vec<(u8, bool)> = Vec::new();
    let mut prev: Option<Token> = None;
    // Where the current top-level statement began, and the head of its rule (up to its first
    // body), for G3.
    let mut statement_start = 0usize;
    let mut head: Option<(usize, usize)> = None;
    let mut after_top_body = false;
    let mut fresh = 0usize;
    let mut i = 0;
    while i < toks.len() {
        let t = toks[i];
        let next_significant = toks[i + 1..].iter().find(|n| n.kind != Kind::Newline).copied();
        match (t.kind, src(&t)) {
            (Kind::Newline, _) => {
                let separates = stack.last().is_none_or(|(_, body)| *body);
                if let (true, Some(p), Some(n)) = (separates && !stack.is_empty(), prev, next_significant)
                    && src(&n) == "("
                    && n.kind == Kind::Punct
                    && ends_term(p, text)
                    && !is_keyword(&p)
                {
                    // G1: end the previous expression where OPA does (once, however many
                    // blank or comment lines come before the parenthesis).
                    if !edits.iter().any(|e| e.0 == p.end) {
                        edits.push((p.end, p.end, ";".into()));
                    }
                }
                if stack.is_empty()
                    && let Some(n) = next_significant
                    && !(n.kind == Kind::Punct && src(&n) == "{")
                    && src(&n) != "else"
                {
                    statement_start = n.start;
                    head = None;
                    after_top_body = false;
                }
                i += 1;
                continue;
            }
            (Kind::Punct, "{") => {
                let body = match prev {
                    None => false,
                    Some(p) => match p.kind {
                        Kind::Ident => KEYWORDS[..2].contains(&src(&p)) || !is_keyword(&p),
                        Kind::Number | Kind::Str => true,
                        Kind::Punct => matches!(src(&p), "]" | ")" | "}"),
                        Kind::Newline => false,
                    },
                };
                if stack.is_empty() && body {
                    if after_top_body && v0 {
                        // G3: a further body of the same rule gets the rule's head.
                        if let Some((h0, h1)) = head {
                            edits.push((t.start, t.start, format!("{} ", text[h0..h1].trim())));
                        }
                    } else if head.is_none() {
                        head = Some((statement_start, t.start));
                    }
                }
                stack.push((b'{', body));
            }
            (Kind::Punct, "(" | "[") => stack.push((src(&t).as_bytes()[0], false)),
            (Kind::Punct, "|") => {
                // A comprehension's body: newlines separate its expressions.
                if let Some(top) = stack.last_mut() {
                    top.1 = true;
                }
            }
            (Kind::Punct, "}" | ")" | "]") => {
                let closed = stack.pop();
                if stack.is_empty() && closed.is_some_and(|(c, body)| c == b'{' && body) {
                    after_top_body = true;
                }
            }
            (Kind::Ident, "else") => after_top_body = false,
            (Kind::Ident, "not") if stack.last().is_some_and(|(_, body)| *body) => {
                if let Some((mut hoist, _)) = hoist_negated_call(&toks, i, text, &mut fresh) {
                    edits.append(&mut hoist);
                }
            }
            (Kind::Ident, "not") if stack.is_empty() && prev.is_some_and(|p| src(&p) == "if") => {
                // A one-line body (`r if not f(x.y)`): braces make room for the binding.
                if let Some((mut hoist, close)) = hoist_negated_call(&toks, i, text, &mut fresh)
                    && toks.get(close + 1).is_none_or(|t| t.kind == Kind::Newline)
                {
                    if let Some(last) = hoist.last_mut() {
                        last.2.insert_str(0, "{ ");
                    }
                    edits.append(&mut hoist);
                    edits.push((toks[close].end, toks[close].end, " }".into()));
                }
            }
            (Kind::Ident, "sprintf") => {
                if let Some(edit) = sprintf_missing(&toks, i, text) {
                    edits.push(edit);
                }
            }
            _ => {}
        }
        prev = Some(t);
        i += 1;
    }
    if edits.is_empty() {
        return Cow::Borrowed(text);
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    Cow::Owned(out)
}

/// Rewrites a Rego v0 module as Rego v1, as `opa fmt --v0-v1` does for what differs between the
/// two: `if` before every rule body (`else` bodies too), `contains` in partial set rules
/// (`deny[msg] {` becomes `deny contains msg if {`), and one rule per body (a v0 rule's further
/// bodies get its head). Lines stay where they are. For handing v0 policies, such as most
/// Gatekeeper templates, to an engine that reads v1 only; a module that already uses `if`
/// is left as it is.
pub fn v0_to_v1(text: &str) -> String {
    let toks = tokens(text);
    let src = |t: &Token| &text[t.start..t.end];
    let is_keyword = |t: &Token| t.kind == Kind::Ident && KEYWORDS.contains(&src(t));
    if toks.iter().any(|t| t.kind == Kind::Ident && src(t) == "if") {
        return text.to_string();
    }
    let mut edits: Edits = Vec::new();
    let mut stack: Vec<(u8, bool)> = Vec::new();
    let mut prev: Option<Token> = None;
    // The current top-level statement's first token, and its converted head once its first
    // body is seen.
    let mut statement_start = 0usize;
    let mut head: Option<String> = None;
    let mut after_top_body = false;
    for (i, t) in toks.iter().enumerate() {
        match (t.kind, src(t)) {
            (Kind::Newline, _) => {
                let next = toks[i + 1..].iter().position(|n| n.kind != Kind::Newline).map(|k| i + 1 + k);
                if stack.is_empty()
                    && let Some(n) = next
                    && src(&toks[n]) != "{"
                    && src(&toks[n]) != "else"
                {
                    statement_start = n;
                    head = None;
                    after_top_body = false;
                }
                continue;
            }
            (Kind::Punct, "{") => {
                let body = match prev {
                    None => false,
                    Some(p) => match p.kind {
                        Kind::Ident => src(&p) == "else" || !is_keyword(&p),
                        Kind::Number | Kind::Str => true,
                        Kind::Punct => matches!(src(&p), "]" | ")" | "}"),
                        Kind::Newline => false,
                    },
                };
                if stack.is_empty() && body {
                    if after_top_body {
                        let again = head.clone().unwrap_or_default();
                        edits.push((t.start, t.start, format!("{again} if ")));
                    } else {
                        if head.is_none() && prev.is_none_or(|p| src(&p) != "else") {
                            let (converted, mut set_edits) = v1_head(&toks[statement_start..i], text);
                            edits.append(&mut set_edits);
                            head = Some(converted);
                        }
                        edits.push((t.start, t.start, "if ".into()));
                    }
                }
                stack.push((b'{', body));
            }
            (Kind::Punct, "(" | "[") => stack.push((src(t).as_bytes()[0], false)),
            (Kind::Punct, "}" | ")" | "]") => {
                let closed = stack.pop();
                if stack.is_empty() && closed.is_some_and(|(c, body)| c == b'{' && body) {
                    after_top_body = true;
                }
            }
            (Kind::Ident, "else") if stack.is_empty() => after_top_body = false,
            _ => {}
        }
        prev = Some(*t);
    }
    edits.sort_by_key(|e| std::cmp::Reverse(e.0));
    let mut out = text.to_string();
    for (start, end, with) in edits {
        out.replace_range(start..end, &with);
    }
    out
}

/// A v0 rule head (its tokens up to the first body) in v1: a partial set rule `name[term]`
/// becomes `name contains term`. Returns the head's v1 text on one line, and the edits that
/// make it so in place.
fn v1_head(head: &[Token], text: &str) -> (String, Edits) {
    let sig: Vec<&Token> = head.iter().filter(|t| t.kind != Kind::Newline).collect();
    let s = |t: &Token| &text[t.start..t.end];
    let whole = |edits: &Edits| {
        let (Some(first), Some(last)) = (sig.first(), sig.last()) else { return String::new() };
        let mut out = text[first.start..last.end].to_string();
        for (start, end, with) in edits {
            out.replace_range(start - first.start..end - first.start, with);
        }
        out.replace('\n', " ")
    };
    // `a.b[` … `]` with nothing after the closing bracket and no `=` in the head.
    let mut k = 0;
    while k + 1 < sig.len() && sig[k].kind == Kind::Ident && s(sig[k + 1]) == "." {
        k += 2;
    }
    let open = k + 1;
    let is_set = sig.first().is_some_and(|t| t.kind == Kind::Ident && !KEYWORDS.contains(&s(t)))
        && sig.get(open).is_some_and(|t| s(t) == "[")
        && {
            let mut depth = 0i32;
            let mut close = None;
            for (j, t) in sig.iter().enumerate().skip(open) {
                match s(t) {
                    "[" | "(" | "{" => depth += 1,
                    "]" | ")" | "}" => {
                        depth -= 1;
                        if depth == 0 {
                            close = Some(j);
                            break;
                        }
                    }
                    _ => {}
                }
            }
            close == Some(sig.len() - 1)
        };
    let mut edits = Vec::new();
    if is_set {
        let (open, close) = (sig[open], sig[sig.len() - 1]);
        edits.push((close.start, close.end, String::new()));
        edits.push((open.start, open.end, " contains ".to_string()));
    }
    (whole(&edits), edits)
}

/// Edits: (start, end, replacement).
type Edits = Vec<(usize, usize, String)>;

/// G4: `not f(a.b, 1)` at token `at` (the `not`): edits that bind every argument that is a
/// reference to a fresh variable before the `not` (the binding last), and the index of the
/// call's closing parenthesis. `None` when the negated expression is not a call with such an
/// argument on one line.
fn hoist_negated_call(toks: &[Token], at: usize, text: &str, fresh: &mut usize) -> Option<(Edits, usize)> {
    let s = |t: &Token| &text[t.start..t.end];
    // The function's name: identifiers joined by dots, then `(`.
    let mut k = at + 1;
    loop {
        let t = toks.get(k)?;
        if t.kind != Kind::Ident || KEYWORDS.contains(&s(t)) {
            return None;
        }
        let next = toks.get(k + 1)?;
        match s(next) {
            "." => k += 2,
            "(" => {
                k += 1;
                break;
            }
            _ => return None,
        }
    }
    // The arguments, split at commas of depth 0, up to the closing parenthesis.
    let mut args: Vec<(usize, usize)> = Vec::new();
    let mut depth = 0;
    let mut first = k + 1;
    let mut j = k + 1;
    loop {
        let t = toks.get(j)?;
        match (t.kind, s(t)) {
            (Kind::Newline, _) => return None,
            (Kind::Punct, "(" | "[" | "{") => depth += 1,
            (Kind::Punct, ")") if depth == 0 => {
                if j > first {
                    args.push((first, j));
                }
                break;
            }
            (Kind::Punct, ")" | "]" | "}") => depth -= 1,
            (Kind::Punct, ",") if depth == 0 => {
                args.push((first, j));
                first = j + 1;
            }
            _ => {}
        }
        j += 1;
    }
    let mut edits = Vec::new();
    let mut bound = String::new();
    for (a, b) in args {
        let head = &toks[a];
        let is_ref = head.kind == Kind::Ident
            && !matches!(s(head), "true" | "false" | "null")
            && !KEYWORDS.contains(&s(head))
            && b > a + 1
            && matches!(s(&toks[a + 1]), "." | "[")
            // A reference, not a call or an expression: no `(` and no operator at its top.
            && toks[a..b].iter().all(|t| t.kind != Kind::Punct || matches!(s(t), "." | "[" | "]" | ")" | "(") )
            && !toks[a..b].iter().any(|t| s(t) == "(");
        if !is_ref {
            continue;
        }
        let name = format!("__assay_not{}", *fresh);
        *fresh += 1;
        bound.push_str(&format!("{name} := {}; ", &text[head.start..toks[b - 1].end]));
        edits.push((head.start, toks[b - 1].end, name));
    }
    if edits.is_empty() {
        return None;
    }
    edits.push((toks[at].start, toks[at].start, bound));
    Some((edits, j))
}

/// Whether a token can end a term (so that a following `(` would continue it as a call).
fn ends_term(t: Token, text: &str) -> bool {
    match t.kind {
        Kind::Ident | Kind::Number | Kind::Str => true,
        Kind::Punct => matches!(&text[t.start..t.end], ")" | "]" | "}"),
        Kind::Newline => false,
    }
}

/// G2: `sprintf("…", [a, b])` at token `at`, when the literal array holds fewer values than the
/// literal format has verbs: an edit of the format that prints OPA's `%!v(MISSING)` for each.
fn sprintf_missing(toks: &[Token], at: usize, text: &str) -> Option<(usize, usize, String)> {
    let s = |k: usize| toks.get(k).map(|t| &text[t.start..t.end]);
    let sig: Vec<usize> = (at..toks.len()).filter(|k| toks[*k].kind != Kind::Newline).take(4).collect();
    let [_, open, format, comma] = sig.as_slice() else { return None };
    if s(*open)? != "(" || toks[*format].kind != Kind::Str || s(*comma)? != "," {
        return None;
    }
    let array_open = (comma + 1..toks.len()).find(|k| toks[*k].kind != Kind::Newline)?;
    if s(array_open)? != "[" {
        return None;
    }
    // Count the array's values: commas at its own depth, and whether it holds anything.
    let mut depth = 0;
    let mut values = 0;
    let mut any = false;
    let mut k = array_open;
    loop {
        k += 1;
        let t = toks.get(k)?;
        match (t.kind, &text[t.start..t.end]) {
            (Kind::Newline, _) => continue,
            (Kind::Punct, "(" | "[" | "{") => depth += 1,
            (Kind::Punct, ")" | "}") => depth -= 1,
            (Kind::Punct, "]") if depth == 0 => break,
            (Kind::Punct, "]") => depth -= 1,
            (Kind::Punct, ",") if depth == 0 => values += 1,
            (Kind::Punct, "|") if depth == 0 => return None,
            _ => {}
        }
        any = true;
    }
    // A trailing comma does not make a value.
    let last = (array_open + 1..k).rev().find(|j| toks[*j].kind != Kind::Newline)?;
    let values = if !any {
        0
    } else if s(last)? == "," {
        values
    } else {
        values + 1
    };
    let literal = &text[toks[*format].start..toks[*format].end];
    let (rewritten, verbs) = mark_missing(literal, values);
    (verbs > values).then(|| (toks[*format].start, toks[*format].end, rewritten))
}

/// The format literal with every verb past the first `values` replaced by Go's missing-operand
/// text (escaped so that `sprintf` prints it), and the number of verbs.
fn mark_missing(literal: &str, values: usize) -> (String, usize) {
    let b = literal.as_bytes();
    let mut out = String::with_capacity(literal.len() + 16);
    let mut verbs = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let ch = literal[i..].chars().next().unwrap_or(' ');
            out.push(ch);
            i += ch.len_utf8();
            continue;
        }
        if b.get(i + 1) == Some(&b'%') {
            out.push_str("%%");
            i += 2;
            continue;
        }
        let mut j = i + 1;
        while j < b.len() && (b"+-# 0".contains(&b[j]) || b[j].is_ascii_digit() || b[j] == b'.' || b[j] == b'*') {
            j += 1;
        }
        let Some(&verb) = b.get(j).filter(|v| v.is_ascii_alphabetic()) else {
            out.push_str(&literal[i..j]);
            i = j;
            continue;
        };
        verbs += 1;
        if verbs > values {
            out.push_str(&format!("%%!{}(MISSING)", verb as char));
        } else {
            out.push_str(&literal[i..=j]);
        }
        i = j + 1;
    }
    (out, verbs)
}

#[cfg(test)]
mod tests {
    use super::{for_regorus, v0_to_v1};

    #[test]
    fn g1_a_line_starting_with_a_paren_is_a_new_expression() {
        let text = "package p\n\nr {\n  x := 1\n  input.a\n  (x + 1) > 1\n}\n";
        assert_eq!(for_regorus(text, true), "package p\n\nr {\n  x := 1\n  input.a;\n  (x + 1) > 1\n}\n");
        // Inside brackets and after an operator a newline is only a space.
        let inside = "package p\n\nr {\n  f(\n    (1)\n  )\n  x := 1 +\n  (2)\n}\n";
        assert_eq!(for_regorus(inside, true), inside);
        // An object literal's braces are not a body; a comprehension's body is.
        let object = "package p\n\nr := {\n  \"a\": 1\n}\n\ns := [y | y := input.b\n  (y) > 1]\n";
        assert_eq!(
            for_regorus(object, true),
            "package p\n\nr := {\n  \"a\": 1\n}\n\ns := [y | y := input.b;\n  (y) > 1]\n"
        );
        // Comment lines between: one `;`.
        let comment = "package p\n\nr if {\n  input.a\n  # why\n\n  (1) > 0\n}\n";
        assert_eq!(for_regorus(comment, false), "package p\n\nr if {\n  input.a;\n  # why\n\n  (1) > 0\n}\n");
        // Strings and comments are left alone.
        let quoted = "package p\n\nr {\n  x := \"a\n  # (b)\n}\n";
        assert_eq!(for_regorus(quoted, true), quoted);
    }

    #[test]
    fn g2_missing_sprintf_values_print_as_go_prints_them() {
        let text = "package p\n\nmsg := sprintf(\"%v and %d, 100%%, %.2f\", [1])\n";
        assert_eq!(
            for_regorus(text, false),
            "package p\n\nmsg := sprintf(\"%v and %%!d(MISSING), 100%%, %%!f(MISSING)\", [1])\n"
        );
        let enough = "package p\n\nmsg := sprintf(\"%v %v\", [[1, 2], {\"a\": 3}])\n";
        assert_eq!(for_regorus(enough, false), enough);
        let variable = "package p\n\nmsg := sprintf(\"%v %v\", args)\n";
        assert_eq!(for_regorus(variable, false), variable);
    }

    #[test]
    fn g4_references_leave_negated_calls() {
        let text = "package p\n\nr if {\n  not f(input.a.b, 1, x)\n}\n";
        assert_eq!(
            for_regorus(text, false),
            "package p\n\nr if {\n  __assay_not0 := input.a.b; not f(__assay_not0, 1, x)\n}\n"
        );
        let builtin = "package p\n\nr {\n  c := input.c\n  not startswith(c.image, \"a\")\n}\n";
        assert_eq!(
            for_regorus(builtin, true),
            "package p\n\nr {\n  c := input.c\n  __assay_not0 := c.image; not startswith(__assay_not0, \"a\")\n}\n"
        );
        let inline = "package p\n\nr if not f(input.missing)\n";
        assert_eq!(
            for_regorus(inline, false),
            "package p\n\nr if { __assay_not0 := input.missing; not f(__assay_not0) }\n"
        );
        // Not a call, or no reference among the arguments: left alone.
        for same in [
            "package p\n\nr if not input.flag\n",
            "package p\n\nr if {\n  not f(1, x)\n}\n",
            "package p\n\nr if {\n  not f(g(input.a))\n}\n",
        ] {
            assert_eq!(for_regorus(same, false), same);
        }
    }

    #[test]
    fn g3_every_further_body_of_a_v0_rule_gets_its_head() {
        let text = "package p\n\ns[msg] { false; msg := \"a\" } { msg := \"b\" }\n";
        assert_eq!(for_regorus(text, true), "package p\n\ns[msg] { false; msg := \"a\" } s[msg] { msg := \"b\" }\n");
        let multi = "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} {\n  m := \"b\"\n}\n";
        assert_eq!(
            for_regorus(multi, true),
            "package p\n\nviolation[{\"msg\": m}] {\n  m := \"a\"\n} violation[{\"msg\": m}] {\n  m := \"b\"\n}\n"
        );
        // else chains and v1 are left alone.
        let chain = "package p\n\nr = 1 { false } else = 2 { true }\n";
        assert_eq!(for_regorus(chain, true), chain);
        assert_eq!(for_regorus(text, false), text);
    }

    #[test]
    fn v0_modules_read_as_v1() {
        let text = "package p\n\nimport future.keywords.in\n\ndefault allow = false\n\nallow {\n  input.a\n}\n\n\
                    violation[{\"msg\": msg}] {\n  msg := \"a\"\n} {\n  msg := \"b\"\n}\n\n\
                    o[k] = v { k := \"a\"; v := 1 }\n\nf(x) = y { y := x } else = 2 { true } else { false }\n";
        assert_eq!(
            v0_to_v1(text),
            "package p\n\nimport future.keywords.in\n\ndefault allow = false\n\nallow if {\n  input.a\n}\n\n\
             violation contains {\"msg\": msg} if {\n  msg := \"a\"\n} violation contains {\"msg\": msg} if {\n  \
             msg := \"b\"\n}\n\no[k] = v if { k := \"a\"; v := 1 }\n\n\
             f(x) = y if { y := x } else = 2 if { true } else if { false }\n"
        );
        let v1 = "package p\n\nr if { true }\n";
        assert_eq!(v0_to_v1(v1), v1);
    }
}
