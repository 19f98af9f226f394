//! A small element tree read with quick-xml, for the WCO messages BayLens maps: local names
//! (namespace prefixes dropped), attributes, text, children. No DTD is processed: a document
//! with one is refused, so no entity can expand or reach outside the file.

use quick_xml::Reader;
use quick_xml::events::Event;

/// Deepest nesting accepted.
const MAX_DEPTH: usize = 64;
/// Most elements accepted (a 10,000-declaration batch file has about 250,000; the HTTP route's
/// 2 MiB body limit keeps requests far below).
const MAX_ELEMENTS: usize = 4_000_000;

/// An element.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Node {
    /// Local name (no prefix).
    pub name: String,
    /// Attributes by local name.
    pub attrs: Vec<(String, String)>,
    /// Its own text, trimmed.
    pub text: String,
    /// Child elements in order.
    pub children: Vec<Node>,
}

impl Node {
    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child named `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The element at `path` (`A/B/C`, first match at each step).
    pub fn at(&self, path: &str) -> Option<&Node> {
        path.split('/').try_fold(self, |n, step| n.child(step))
    }

    /// The non-empty text at `path`.
    pub fn text_at(&self, path: &str) -> Option<&str> {
        self.at(path)
            .map(|n| n.text.as_str())
            .filter(|t| !t.is_empty())
    }

    /// Attribute `name`.
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every element named `name` at any depth, in document order, with its path from here.
    pub fn descendants<'a>(&'a self, name: &str, path: &str, out: &mut Vec<(String, &'a Node)>) {
        for c in &self.children {
            let p = format!("{path}/{}", c.name);
            if c.name == name {
                out.push((p.clone(), c));
            }
            c.descendants(name, &p, out);
        }
    }
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Parses a document into its root element. Errors say where (byte offset) and why.
pub fn parse(text: &str) -> Result<Node, String> {
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Node> = vec![Node::default()];
    let mut elements = 0usize;
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("not well-formed XML at byte {at}: {e}"))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if stack.len() > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} elements"));
                }
                elements += 1;
                if elements > MAX_ELEMENTS {
                    return Err(format!("more than {MAX_ELEMENTS} elements"));
                }
                let mut node = Node {
                    name: local(e.name().as_ref()),
                    ..Node::default()
                };
                for a in e.attributes() {
                    let a = a.map_err(|e| format!("bad attribute at byte {at}: {e}"))?;
                    let value = a
                        .unescape_value()
                        .map_err(|e| format!("bad attribute value at byte {at}: {e}"))?;
                    node.attrs.push((local(a.key.as_ref()), value.into_owned()));
                }
                if matches!(event, Event::Start(_)) {
                    stack.push(node);
                } else if let Some(parent) = stack.last_mut() {
                    parent.children.push(node);
                }
            }
            Event::End(_) => {
                let mut node = stack.pop().ok_or("unbalanced end tag")?;
                node.text = node.text.trim().to_owned();
                stack
                    .last_mut()
                    .ok_or("unbalanced end tag")?
                    .children
                    .push(node);
            }
            Event::Text(t) => {
                let s = t
                    .decode()
                    .map_err(|e| format!("bad text at byte {at}: {e}"))?;
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::CData(t) => {
                let s = t
                    .decode()
                    .map_err(|e| format!("bad CDATA at byte {at}: {e}"))?;
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c.to_string(),
                    _ => {
                        let name = r.decode().map_err(|e| e.to_string())?;
                        quick_xml::escape::resolve_xml_entity(&name)
                            .ok_or_else(|| format!("unknown entity &{name}; at byte {at}"))?
                            .to_owned()
                    }
                };
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&resolved);
                }
            }
            Event::DocType(_) => {
                return Err("a DOCTYPE is not accepted (no DTD is processed)".into());
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if stack.len() != 1 {
        return Err("the document ends inside an element".into());
    }
    let mut top = stack.pop().unwrap_or_default();
    match top.children.len() {
        1 => Ok(top.children.remove(0)),
        0 => Err("no root element".into()),
        _ => Err("more than one root element".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_their_prefix_and_entities_resolve() {
        let n = parse(
            r#"<?xml version="1.0"?><md:A xmlns:md="urn:x"><B k="v">x &amp; y&#33;</B><B/></md:A>"#,
        )
        .unwrap();
        assert_eq!(n.name, "A");
        assert_eq!(n.text_at("B"), Some("x & y!"));
        assert_eq!(n.child("B").unwrap().attr("k"), Some("v"));
        assert_eq!(n.all("B").count(), 2);
    }

    #[test]
    fn a_doctype_and_broken_xml_are_refused() {
        assert!(
            parse(r#"<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>"#)
                .unwrap_err()
                .contains("DOCTYPE")
        );
        assert!(parse("<a><b></a>").unwrap_err().contains("XML"));
        assert!(parse("").unwrap_err().contains("no root"));
    }
}
