//! S3's XML bodies: the documents the endpoint writes (listings, multipart
//! results, errors) and the few it reads (CompleteMultipartUpload, Delete,
//! NotificationConfiguration).
//!
//! Writers build strings directly ([`element`] escapes every value); result
//! roots carry the XML declaration and S3's namespace as S3 sends them, so
//! SDK parsers see what they see from AWS.
//!
//! Readers parse with quick-xml into a small element tree and refuse
//! anything unusual: a `<!DOCTYPE>` (and so any entity definition), entity
//! references other than XML's five predefined ones and character
//! references, more than one root, deep nesting. Every parse error is
//! `400 MalformedXML`; request bodies are size-limited by the caller.

use crate::checksum::ChecksumAlgorithm;
use crate::events::{NotificationConfig, NotificationRule};
use crate::storage::{BucketInfo, Listing, ObjectMeta, PartInfo, StoredChecksum, UploadInfo};
use crate::S3Error;

/// Append `<name>value</name>` with `value` escaped.
pub fn element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    escape_into(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Append `s` with XML's special characters escaped.
pub fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
}

/// S3's XML namespace.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";
const DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// A document starting with the declaration and `<root xmlns="…">`.
fn document(root: &str) -> String {
    let mut out = String::with_capacity(512);
    out.push_str(DECLARATION);
    out.push('<');
    out.push_str(root);
    out.push_str(" xmlns=\"");
    out.push_str(S3_NAMESPACE);
    out.push_str("\">");
    out
}

fn open(out: &mut String, name: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
}

fn close(out: &mut String, name: &str) {
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// An ETag as S3 writes it, in double quotes (added unless already there).
fn quoted(etag: &str) -> String {
    if etag.len() >= 2 && etag.starts_with('"') && etag.ends_with('"') {
        etag.to_owned()
    } else {
        format!("\"{etag}\"")
    }
}

fn owner(out: &mut String, name: &str, owner_id: &str) {
    open(out, name);
    element(out, "ID", owner_id);
    element(out, "DisplayName", owner_id);
    close(out, name);
}

fn checksum_element(out: &mut String, checksum: Option<&StoredChecksum>) {
    if let Some(c) = checksum {
        if let Some(alg) = ChecksumAlgorithm::parse(&c.algorithm) {
            element(out, alg.xml_element(), &c.value);
        }
    }
}

// ---------------------------------------------------------------------------
// Dates

fn datetime(ms: i64) -> (time::OffsetDateTime, i64) {
    let secs = ms.div_euclid(1000);
    let millis = ms.rem_euclid(1000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => (t, millis),
        Err(_) => (time::OffsetDateTime::UNIX_EPOCH, 0),
    }
}

/// `2009-10-12T17:50:30.000Z` (milliseconds since the epoch → ISO 8601, as in
/// S3's XML and event records).
pub fn iso8601(ms: i64) -> String {
    let (t, millis) = datetime(ms);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        millis
    )
}

/// `Mon, 12 Oct 2009 17:50:30 GMT` (IMF-fixdate, for `Last-Modified`).
pub fn http_date(ms: i64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let (t, _) = datetime(ms);
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[usize::from(t.weekday().number_days_from_monday())],
        t.day(),
        MONTHS[usize::from(u8::from(t.month()) - 1)],
        t.year(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

// ---------------------------------------------------------------------------
// Writers

/// `ListAllMyBucketsResult` (ListBuckets).
pub fn list_buckets(buckets: &[BucketInfo], owner_id: &str) -> String {
    let mut out = document("ListAllMyBucketsResult");
    owner(&mut out, "Owner", owner_id);
    open(&mut out, "Buckets");
    for b in buckets {
        open(&mut out, "Bucket");
        element(&mut out, "Name", &b.name);
        element(&mut out, "CreationDate", &iso8601(b.created_ms));
        close(&mut out, "Bucket");
    }
    close(&mut out, "Buckets");
    close(&mut out, "ListAllMyBucketsResult");
    out
}

/// What a listing response needs besides the listing itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct ListParams<'a> {
    pub bucket: &'a str,
    pub prefix: &'a str,
    pub delimiter: Option<&'a str>,
    pub max_keys: usize,
    /// `encoding-type=url` was requested: keys, prefixes, the delimiter,
    /// start-after and markers are URL-encoded ([`url_encode`]) and
    /// `<EncodingType>url</EncodingType>` is included (botocore only decodes
    /// when it sees that element).
    pub encoding_type_url: bool,
    /// v2: start_after, continuation_token (as received),
    /// next_continuation_token (opaque string to send); v1: marker,
    /// next_marker
    pub start_after: Option<&'a str>,
    pub continuation_token: Option<&'a str>,
    pub next_continuation_token: Option<&'a str>,
    pub marker: Option<&'a str>,
    pub next_marker: Option<&'a str>,
    pub fetch_owner: bool,
    pub owner_id: &'a str,
}

/// URL-encode a key for a listing with `encoding-type=url`: every byte of
/// the UTF-8 except the unreserved characters (`A–Z a–z 0–9 - _ . ~`) and `/`
/// becomes `%XX` (a space is `%20`). botocore decodes with `unquote_plus`,
/// other SDKs with a plain percent-decode; this form reads back the same
/// under both (a literal `+` is `%2B`).
pub fn url_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
    }
    out
}

fn listed(p: &ListParams, s: &str) -> String {
    if p.encoding_type_url {
        url_encode(s)
    } else {
        s.to_owned()
    }
}

fn contents(out: &mut String, p: &ListParams, o: &ObjectMeta, with_owner: bool) {
    open(out, "Contents");
    element(out, "Key", &listed(p, &o.key));
    element(out, "LastModified", &iso8601(o.last_modified_ms));
    element(out, "ETag", &quoted(&o.etag));
    if let Some(c) = &o.checksum {
        element(out, "ChecksumAlgorithm", &c.algorithm);
    }
    element(out, "Size", &o.size.to_string());
    if with_owner {
        owner(out, "Owner", p.owner_id);
    }
    element(out, "StorageClass", "STANDARD");
    close(out, "Contents");
}

fn common_prefixes(out: &mut String, p: &ListParams, listing: &Listing) {
    for cp in &listing.common_prefixes {
        open(out, "CommonPrefixes");
        element(out, "Prefix", &listed(p, cp));
        close(out, "CommonPrefixes");
    }
}

/// `ListBucketResult` for ListObjectsV2.
pub fn list_objects_v2(p: &ListParams, listing: &Listing) -> String {
    let mut out = document("ListBucketResult");
    element(&mut out, "Name", p.bucket);
    element(&mut out, "Prefix", &listed(p, p.prefix));
    if let Some(sa) = p.start_after {
        element(&mut out, "StartAfter", &listed(p, sa));
    }
    if let Some(t) = p.continuation_token {
        element(&mut out, "ContinuationToken", t);
    }
    if let Some(t) = p.next_continuation_token {
        element(&mut out, "NextContinuationToken", t);
    }
    element(&mut out, "KeyCount", &(listing.objects.len() + listing.common_prefixes.len()).to_string());
    element(&mut out, "MaxKeys", &p.max_keys.to_string());
    if let Some(d) = p.delimiter {
        element(&mut out, "Delimiter", &listed(p, d));
    }
    if p.encoding_type_url {
        element(&mut out, "EncodingType", "url");
    }
    element(&mut out, "IsTruncated", bool_str(listing.truncated));
    for o in &listing.objects {
        contents(&mut out, p, o, p.fetch_owner);
    }
    common_prefixes(&mut out, p, listing);
    close(&mut out, "ListBucketResult");
    out
}

/// `ListBucketResult` for ListObjects (v1). Contents always carry `Owner`,
/// as in S3.
pub fn list_objects_v1(p: &ListParams, listing: &Listing) -> String {
    let mut out = document("ListBucketResult");
    element(&mut out, "Name", p.bucket);
    element(&mut out, "Prefix", &listed(p, p.prefix));
    element(&mut out, "Marker", &listed(p, p.marker.unwrap_or("")));
    if let Some(m) = p.next_marker {
        element(&mut out, "NextMarker", &listed(p, m));
    }
    element(&mut out, "MaxKeys", &p.max_keys.to_string());
    if let Some(d) = p.delimiter {
        element(&mut out, "Delimiter", &listed(p, d));
    }
    if p.encoding_type_url {
        element(&mut out, "EncodingType", "url");
    }
    element(&mut out, "IsTruncated", bool_str(listing.truncated));
    for o in &listing.objects {
        contents(&mut out, p, o, true);
    }
    common_prefixes(&mut out, p, listing);
    close(&mut out, "ListBucketResult");
    out
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// `InitiateMultipartUploadResult` (CreateMultipartUpload).
pub fn initiate_multipart_upload(bucket: &str, key: &str, upload_id: &str) -> String {
    let mut out = document("InitiateMultipartUploadResult");
    element(&mut out, "Bucket", bucket);
    element(&mut out, "Key", key);
    element(&mut out, "UploadId", upload_id);
    close(&mut out, "InitiateMultipartUploadResult");
    out
}

/// `CompleteMultipartUploadResult`. `etag` with or without quotes (written
/// quoted).
pub fn complete_multipart_upload(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    let mut out = document("CompleteMultipartUploadResult");
    element(&mut out, "Location", location);
    element(&mut out, "Bucket", bucket);
    element(&mut out, "Key", key);
    element(&mut out, "ETag", &quoted(etag));
    close(&mut out, "CompleteMultipartUploadResult");
    out
}

/// `CopyObjectResult` (CopyObject). `etag` with or without quotes.
pub fn copy_object_result(etag: &str, last_modified_ms: i64) -> String {
    copy_result("CopyObjectResult", etag, last_modified_ms)
}

/// `CopyPartResult` (UploadPartCopy). `etag` with or without quotes.
pub fn copy_part_result(etag: &str, last_modified_ms: i64) -> String {
    copy_result("CopyPartResult", etag, last_modified_ms)
}

fn copy_result(root: &str, etag: &str, last_modified_ms: i64) -> String {
    let mut out = document(root);
    element(&mut out, "ETag", &quoted(etag));
    element(&mut out, "LastModified", &iso8601(last_modified_ms));
    close(&mut out, root);
    out
}

/// `ListPartsResult`. `parts` is the page to return (at most `max_parts`),
/// `truncated` whether more follow; `NextPartNumberMarker` is the last part
/// listed.
#[allow(clippy::too_many_arguments)]
pub fn list_parts(
    bucket: &str,
    key: &str,
    upload_id: &str,
    parts: &[PartInfo],
    max_parts: usize,
    part_number_marker: u32,
    truncated: bool,
    owner_id: &str,
) -> String {
    let mut out = document("ListPartsResult");
    element(&mut out, "Bucket", bucket);
    element(&mut out, "Key", key);
    element(&mut out, "UploadId", upload_id);
    owner(&mut out, "Initiator", owner_id);
    owner(&mut out, "Owner", owner_id);
    element(&mut out, "StorageClass", "STANDARD");
    element(&mut out, "PartNumberMarker", &part_number_marker.to_string());
    let next = parts.last().map_or(part_number_marker, |p| p.number);
    element(&mut out, "NextPartNumberMarker", &next.to_string());
    element(&mut out, "MaxParts", &max_parts.to_string());
    element(&mut out, "IsTruncated", bool_str(truncated));
    for part in parts {
        open(&mut out, "Part");
        element(&mut out, "PartNumber", &part.number.to_string());
        element(&mut out, "LastModified", &iso8601(part.last_modified_ms));
        element(&mut out, "ETag", &quoted(&part.etag));
        element(&mut out, "Size", &part.size.to_string());
        checksum_element(&mut out, part.checksum.as_ref());
        close(&mut out, "Part");
    }
    close(&mut out, "ListPartsResult");
    out
}

/// `ListMultipartUploadsResult` listing every upload given (never
/// truncated).
pub fn list_multipart_uploads(bucket: &str, uploads: &[UploadInfo], owner_id: &str) -> String {
    let mut out = document("ListMultipartUploadsResult");
    element(&mut out, "Bucket", bucket);
    element(&mut out, "KeyMarker", "");
    element(&mut out, "UploadIdMarker", "");
    element(&mut out, "NextKeyMarker", uploads.last().map_or("", |u| u.key.as_str()));
    element(&mut out, "NextUploadIdMarker", uploads.last().map_or("", |u| u.upload_id.as_str()));
    element(&mut out, "MaxUploads", "1000");
    element(&mut out, "IsTruncated", "false");
    for u in uploads {
        open(&mut out, "Upload");
        element(&mut out, "Key", &u.key);
        element(&mut out, "UploadId", &u.upload_id);
        owner(&mut out, "Initiator", owner_id);
        owner(&mut out, "Owner", owner_id);
        element(&mut out, "StorageClass", "STANDARD");
        element(&mut out, "Initiated", &iso8601(u.initiated_ms));
        close(&mut out, "Upload");
    }
    close(&mut out, "ListMultipartUploadsResult");
    out
}

/// `DeleteResult` (DeleteObjects). In quiet mode only the errors are
/// listed.
pub fn delete_result(deleted: &[String], errors: &[(String, S3Error)], quiet: bool) -> String {
    let mut out = document("DeleteResult");
    if !quiet {
        for key in deleted {
            open(&mut out, "Deleted");
            element(&mut out, "Key", key);
            close(&mut out, "Deleted");
        }
    }
    for (key, e) in errors {
        open(&mut out, "Error");
        element(&mut out, "Key", key);
        element(&mut out, "Code", e.code);
        element(&mut out, "Message", &e.message);
        close(&mut out, "Error");
    }
    close(&mut out, "DeleteResult");
    out
}

/// `LocationConstraint` (GetBucketLocation): empty for `us-east-1`, as S3.
pub fn location_constraint(region: &str) -> String {
    let mut out = String::from(DECLARATION);
    if region.is_empty() || region == "us-east-1" {
        out.push_str("<LocationConstraint xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\"/>");
    } else {
        out.push_str("<LocationConstraint xmlns=\"");
        out.push_str(S3_NAMESPACE);
        out.push_str("\">");
        escape_into(&mut out, region);
        out.push_str("</LocationConstraint>");
    }
    out
}

/// `PostResponse`, the body of a browser POST upload with
/// `success_action_status=201`. `etag` with or without quotes.
pub fn post_response(location: &str, bucket: &str, key: &str, etag: &str) -> String {
    let mut out = String::from(DECLARATION);
    open(&mut out, "PostResponse");
    element(&mut out, "Location", location);
    element(&mut out, "Bucket", bucket);
    element(&mut out, "Key", key);
    element(&mut out, "ETag", &quoted(etag));
    close(&mut out, "PostResponse");
    out
}

fn kind_of(rule: &NotificationRule) -> &'static str {
    match rule.target_kind.as_str() {
        "Queue" => "Queue",
        "CloudFunction" => "CloudFunction",
        _ => "Topic",
    }
}

/// `NotificationConfiguration` (GetBucketNotificationConfiguration).
pub fn notification_configuration(cfg: &NotificationConfig) -> String {
    let mut out = document("NotificationConfiguration");
    for rule in &cfg.rules {
        let kind = kind_of(rule);
        let wrapper = format!("{kind}Configuration");
        open(&mut out, &wrapper);
        element(&mut out, "Id", &rule.id);
        if let Some(t) = &rule.target {
            element(&mut out, kind, t);
        }
        for e in &rule.events {
            element(&mut out, "Event", e);
        }
        if rule.prefix.is_some() || rule.suffix.is_some() {
            out.push_str("<Filter><S3Key>");
            for (name, value) in [("Prefix", &rule.prefix), ("Suffix", &rule.suffix)] {
                if let Some(v) = value {
                    open(&mut out, "FilterRule");
                    element(&mut out, "Name", name);
                    element(&mut out, "Value", v);
                    close(&mut out, "FilterRule");
                }
            }
            out.push_str("</S3Key></Filter>");
        }
        close(&mut out, &wrapper);
    }
    close(&mut out, "NotificationConfiguration");
    out
}

// ---------------------------------------------------------------------------
// Readers

/// Deepest element nesting accepted (S3's documents need 5).
const MAX_DEPTH: usize = 32;
/// Most objects in one DeleteObjects request, as S3.
pub const MAX_DELETE_KEYS: usize = 1000;

/// A parsed element: local name (namespace prefix dropped), child elements,
/// and its text (all text and CDATA directly inside it, concatenated,
/// references resolved, nothing trimmed). Attributes are ignored.
#[derive(Debug, Default)]
struct Node {
    name: String,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The only child called `name`; more than one is malformed.
    fn one(&self, name: &str) -> Result<Option<&Node>, S3Error> {
        let mut it = self.children.iter().filter(|c| c.name == name);
        let first = it.next();
        if it.next().is_some() {
            return Err(S3Error::malformed_xml());
        }
        Ok(first)
    }

    /// The text of a leaf element; an element with children is malformed.
    fn leaf_text(&self) -> Result<&str, S3Error> {
        if self.children.is_empty() {
            Ok(&self.text)
        } else {
            Err(S3Error::malformed_xml())
        }
    }

    fn child_text(&self, name: &str) -> Result<Option<&str>, S3Error> {
        self.one(name)?.map(Node::leaf_text).transpose()
    }
}

fn local_name(name: &[u8]) -> Result<String, S3Error> {
    std::str::from_utf8(name).map(str::to_owned).map_err(|_| S3Error::malformed_xml())
}

/// Parse a whole document into its root element.
fn parse_tree(body: &[u8]) -> Result<Node, S3Error> {
    use quick_xml::events::Event;

    let malformed = |_| S3Error::malformed_xml();
    let text = std::str::from_utf8(body).map_err(|_| S3Error::malformed_xml())?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = quick_xml::Reader::from_str(text);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;

    fn attach(stack: &mut [Node], root: &mut Option<Node>, node: Node) -> Result<(), S3Error> {
        match stack.last_mut() {
            Some(parent) => parent.children.push(node),
            None if root.is_none() => *root = Some(node),
            None => return Err(S3Error::malformed_xml()),
        }
        Ok(())
    }

    loop {
        match reader.read_event().map_err(malformed)? {
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::DocType(_) => return Err(S3Error::malformed_xml()),
            Event::Start(e) => {
                if root.is_some() || stack.len() >= MAX_DEPTH {
                    return Err(S3Error::malformed_xml());
                }
                stack.push(Node { name: local_name(e.local_name().as_ref())?, ..Node::default() });
            }
            Event::Empty(e) => {
                if root.is_some() && stack.is_empty() {
                    return Err(S3Error::malformed_xml());
                }
                let node = Node { name: local_name(e.local_name().as_ref())?, ..Node::default() };
                attach(&mut stack, &mut root, node)?;
            }
            Event::End(_) => {
                let node = stack.pop().ok_or_else(S3Error::malformed_xml)?;
                attach(&mut stack, &mut root, node)?;
            }
            Event::Text(t) => {
                let s = t.xml10_content().map_err(|_| S3Error::malformed_xml())?;
                match stack.last_mut() {
                    Some(node) => node.text.push_str(&s),
                    None if s.trim_matches(['\u{20}', '\u{9}', '\u{a}', '\u{d}']).is_empty() => {}
                    None => return Err(S3Error::malformed_xml()),
                }
            }
            Event::CData(t) => {
                let s = t.decode().map_err(|_| S3Error::malformed_xml())?;
                stack.last_mut().ok_or_else(S3Error::malformed_xml)?.text.push_str(&s);
            }
            Event::GeneralRef(r) => {
                let node = stack.last_mut().ok_or_else(S3Error::malformed_xml)?;
                if r.is_char_ref() {
                    match r.resolve_char_ref().map_err(malformed)? {
                        Some(c) => node.text.push(c),
                        None => return Err(S3Error::malformed_xml()),
                    }
                } else {
                    let c = match r.as_ref() {
                        b"amp" => '&',
                        b"lt" => '<',
                        b"gt" => '>',
                        b"quot" => '"',
                        b"apos" => '\'',
                        _ => return Err(S3Error::malformed_xml()),
                    };
                    node.text.push(c);
                }
            }
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    root.ok_or_else(S3Error::malformed_xml)
}

fn parse_root(body: &[u8], name: &str) -> Result<Node, S3Error> {
    let root = parse_tree(body)?;
    if root.name != name {
        return Err(S3Error::malformed_xml());
    }
    Ok(root)
}

/// One `<Part>` of a CompleteMultipartUpload body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletedPart {
    pub number: u32,
    /// Without quotes.
    pub etag: String,
    /// `ChecksumCRC32` etc., when the client sent one.
    pub checksums: Vec<(ChecksumAlgorithm, String)>,
}

/// Parse a CompleteMultipartUpload body with every part's details. At
/// least one part is required; order and duplicates are the caller's to
/// check (S3: `InvalidPartOrder`).
pub fn parse_complete_multipart_upload_parts(body: &[u8]) -> Result<Vec<CompletedPart>, S3Error> {
    let root = parse_root(body, "CompleteMultipartUpload")?;
    let mut parts = Vec::new();
    for part in root.all("Part") {
        let number = part
            .child_text("PartNumber")?
            .and_then(|n| n.trim().parse::<u32>().ok())
            .ok_or_else(S3Error::malformed_xml)?;
        let etag = part.child_text("ETag")?.ok_or_else(S3Error::malformed_xml)?;
        let etag = etag.trim();
        let etag = etag.strip_prefix('"').and_then(|e| e.strip_suffix('"')).unwrap_or(etag).to_owned();
        let mut checksums = Vec::new();
        for alg in ChecksumAlgorithm::ALL {
            if let Some(v) = part.child_text(alg.xml_element())? {
                checksums.push((alg, v.trim().to_owned()));
            }
        }
        parts.push(CompletedPart { number, etag, checksums });
    }
    if parts.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok(parts)
}

/// Parse a CompleteMultipartUpload body: `(PartNumber, ETag without
/// quotes)` in document order.
pub fn parse_complete_multipart_upload(body: &[u8]) -> Result<Vec<(u32, String)>, S3Error> {
    Ok(parse_complete_multipart_upload_parts(body)?.into_iter().map(|p| (p.number, p.etag)).collect())
}

/// Parse a DeleteObjects body: the keys (exactly as sent, untrimmed) and
/// `Quiet`. 1 to 1000 objects, else MalformedXML (as S3).
pub fn parse_delete(body: &[u8]) -> Result<(Vec<String>, bool), S3Error> {
    let root = parse_root(body, "Delete")?;
    let quiet = match root.child_text("Quiet")?.map(str::trim) {
        None => false,
        Some(q) if q.eq_ignore_ascii_case("true") => true,
        Some(q) if q.eq_ignore_ascii_case("false") => false,
        Some(_) => return Err(S3Error::malformed_xml()),
    };
    let mut keys = Vec::new();
    for object in root.all("Object") {
        if keys.len() == MAX_DELETE_KEYS {
            return Err(S3Error::malformed_xml());
        }
        let key = object.child_text("Key")?.ok_or_else(S3Error::malformed_xml)?;
        keys.push(key.to_owned());
    }
    if keys.is_empty() {
        return Err(S3Error::malformed_xml());
    }
    Ok((keys, quiet))
}

/// Parse a PutBucketNotificationConfiguration body. Syntax errors are
/// MalformedXML; an unsupported event type, a filter rule other than one
/// `prefix` and one `suffix`, or a repeated `Id` are `400 InvalidArgument`
/// (as S3). A configuration without `Id` gets `<Kind>Configuration-<n>`.
/// `EventBridgeConfiguration` is ignored. An empty document clears all
/// rules.
pub fn parse_notification_configuration(body: &[u8]) -> Result<NotificationConfig, S3Error> {
    let root = parse_root(body, "NotificationConfiguration")?;
    let mut rules: Vec<NotificationRule> = Vec::new();
    for (n, node) in root.children.iter().enumerate() {
        let kind = match node.name.as_str() {
            "TopicConfiguration" => "Topic",
            "QueueConfiguration" => "Queue",
            "CloudFunctionConfiguration" => "CloudFunction",
            "EventBridgeConfiguration" => continue,
            _ => return Err(S3Error::malformed_xml()),
        };
        let id = match node.child_text("Id")?.map(str::trim).filter(|s| !s.is_empty()) {
            Some(id) => id.to_owned(),
            None => format!("{kind}Configuration-{}", n + 1),
        };
        if rules.iter().any(|r| r.id == id) {
            return Err(S3Error::invalid_argument(format!("Configuration id {id:?} is used more than once")));
        }
        let target = node.child_text(kind)?.map(|t| t.trim().to_owned());
        let mut events = Vec::new();
        for e in node.all("Event") {
            let e = e.leaf_text()?.trim();
            if !crate::events::is_supported_event(e) {
                return Err(S3Error::invalid_argument(format!("The event {e:?} is not supported for notifications")));
            }
            if !events.iter().any(|x| x == e) {
                events.push(e.to_owned());
            }
        }
        if events.is_empty() {
            return Err(S3Error::malformed_xml());
        }
        let (mut prefix, mut suffix) = (None, None);
        if let Some(filter) = node.one("Filter")? {
            if let Some(key) = filter.one("S3Key")? {
                for fr in key.all("FilterRule") {
                    let name = fr.child_text("Name")?.ok_or_else(S3Error::malformed_xml)?.trim();
                    let value = fr.child_text("Value")?.unwrap_or("").to_owned();
                    let slot = if name.eq_ignore_ascii_case("prefix") {
                        &mut prefix
                    } else if name.eq_ignore_ascii_case("suffix") {
                        &mut suffix
                    } else {
                        return Err(S3Error::invalid_argument("filter rule name must be either prefix or suffix"));
                    };
                    if slot.replace(value).is_some() {
                        return Err(S3Error::invalid_argument(
                            "Cannot specify more than one prefix rule or suffix rule in a filter.",
                        ));
                    }
                }
            }
        }
        rules.push(NotificationRule { id, events, prefix, suffix, target, target_kind: kind.to_owned() });
    }
    Ok(NotificationConfig { rules })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

    #[test]
    fn escaping() {
        let mut s = String::new();
        element(&mut s, "Key", "a<b>&\"c\"'d\r");
        assert_eq!(s, "<Key>a&lt;b&gt;&amp;&quot;c&quot;&apos;d&#13;</Key>");
    }

    #[test]
    fn dates() {
        // 2009-10-12T17:50:30Z is 1255369830 (date -u -d @1255369830).
        assert_eq!(iso8601(1_255_369_830_000), "2009-10-12T17:50:30.000Z");
        assert_eq!(iso8601(1_255_369_830_007), "2009-10-12T17:50:30.007Z");
        assert_eq!(http_date(1_255_369_830_999), "Mon, 12 Oct 2009 17:50:30 GMT");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(http_date(951_782_400_000), "Tue, 29 Feb 2000 00:00:00 GMT");
        // Out of the representable range: the epoch rather than a panic.
        assert_eq!(iso8601(i64::MAX), "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn bucket_list() {
        let xml = list_buckets(&[BucketInfo { name: "b1".into(), created_ms: 0 }], "owner");
        assert_eq!(
            xml,
            format!(
                "{HEAD}<ListAllMyBucketsResult xmlns=\"{S3_NAMESPACE}\"><Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner>\
                 <Buckets><Bucket><Name>b1</Name><CreationDate>1970-01-01T00:00:00.000Z</CreationDate></Bucket></Buckets>\
                 </ListAllMyBucketsResult>"
            )
        );
    }

    fn object(key: &str) -> ObjectMeta {
        ObjectMeta {
            key: key.into(),
            size: 11,
            etag: "5eb63bbbe01eeed093cb22bb8f5acdc3".into(),
            last_modified_ms: 1_255_369_830_000,
            content_type: None,
            headers: BTreeMap::new(),
            user_metadata: BTreeMap::new(),
            checksum: None,
            parts_count: None,
        }
    }

    fn params<'a>() -> ListParams<'a> {
        ListParams { bucket: "bkt", max_keys: 1000, owner_id: "owner", ..ListParams::default() }
    }

    #[test]
    fn listing_v2() {
        let mut o = object("a b+c/d.txt");
        o.checksum = Some(StoredChecksum { algorithm: "CRC32".into(), value: "DUoRhQ==".into() });
        let listing = Listing {
            objects: vec![o, object("x&y")],
            common_prefixes: vec!["p q/".into()],
            truncated: true,
            next_start_after: Some("p q/".into()),
        };
        let mut p = params();
        p.prefix = "";
        p.delimiter = Some("/");
        p.next_continuation_token = Some("tok");
        let xml = list_objects_v2(&p, &listing);
        assert!(xml.starts_with(&format!(
            "{HEAD}<ListBucketResult xmlns=\"{S3_NAMESPACE}\"><Name>bkt</Name><Prefix></Prefix>"
        )));
        assert!(xml.contains("<NextContinuationToken>tok</NextContinuationToken><KeyCount>3</KeyCount><MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>true</IsTruncated>"));
        assert!(xml.contains(
            "<Contents><Key>a b+c/d.txt</Key><LastModified>2009-10-12T17:50:30.000Z</LastModified>\
             <ETag>&quot;5eb63bbbe01eeed093cb22bb8f5acdc3&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>\
             <Size>11</Size><StorageClass>STANDARD</StorageClass></Contents>"
        ));
        assert!(xml.contains("<Key>x&amp;y</Key>"));
        assert!(xml.contains("<CommonPrefixes><Prefix>p q/</Prefix></CommonPrefixes></ListBucketResult>"));
        assert!(
            !xml.contains("EncodingType") && !xml.contains("<Owner>") && !xml.contains("ContinuationToken>tok</Cont")
        );

        p.encoding_type_url = true;
        p.fetch_owner = true;
        p.start_after = Some("s a");
        p.continuation_token = Some("c+t");
        let xml = list_objects_v2(&p, &listing);
        assert!(xml.contains("<Key>a%20b%2Bc/d.txt</Key>"));
        assert!(xml.contains("<Key>x%26y</Key>"));
        assert!(xml.contains("<Prefix>p%20q/</Prefix>"));
        assert!(xml.contains("<StartAfter>s%20a</StartAfter><ContinuationToken>c+t</ContinuationToken>"));
        assert!(xml.contains("<EncodingType>url</EncodingType>"));
        assert!(xml.contains("<Owner><ID>owner</ID><DisplayName>owner</DisplayName></Owner>"));
    }

    #[test]
    fn listing_v1() {
        let listing = Listing { objects: vec![object("k")], ..Listing::default() };
        let mut p = params();
        p.prefix = "pre fix";
        let xml = list_objects_v1(&p, &listing);
        assert!(xml.contains("<Name>bkt</Name><Prefix>pre fix</Prefix><Marker></Marker><MaxKeys>1000</MaxKeys><IsTruncated>false</IsTruncated>"));
        assert!(xml.contains("<Owner><ID>owner</ID>"), "v1 always lists the owner");
        p.encoding_type_url = true;
        p.marker = Some("m m");
        p.next_marker = Some("n n");
        p.delimiter = Some(" ");
        let xml = list_objects_v1(&p, &listing);
        assert!(xml.contains("<Prefix>pre%20fix</Prefix><Marker>m%20m</Marker><NextMarker>n%20n</NextMarker>"));
        assert!(xml.contains("<Delimiter>%20</Delimiter><EncodingType>url</EncodingType>"));
    }

    #[test]
    fn url_encoding() {
        assert_eq!(url_encode("abc-_.~/XYZ09"), "abc-_.~/XYZ09");
        assert_eq!(url_encode("a b+c%d&e=f?g#h"), "a%20b%2Bc%25d%26e%3Df%3Fg%23h");
        assert_eq!(url_encode("é日"), "%C3%A9%E6%97%A5");
        assert_eq!(url_encode("\u{1}"), "%01");
    }

    /// botocore decodes listing keys with urllib's `unquote_plus`; check that
    /// it gives back every key (run with python3 when available).
    #[test]
    fn url_encoding_round_trips_through_unquote_plus() {
        let keys = ["a b+c", "100%", "x/y z/", "é+日 ~", "&=?#;:@,$'\"<>"];
        let encoded: Vec<String> = keys.iter().map(|k| url_encode(k)).collect();
        let script = format!(
            "import json,sys,urllib.parse; print(json.dumps([urllib.parse.unquote_plus(x) for x in {}]))",
            serde_json::to_string(&encoded).unwrap()
        );
        let Ok(out) = std::process::Command::new("python3").args(["-c", &script]).output() else { return };
        if !out.status.success() {
            return;
        }
        let decoded: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(decoded, keys);
    }

    #[test]
    fn multipart_documents() {
        assert_eq!(
            initiate_multipart_upload("b", "k&", "u1"),
            format!(
                "{HEAD}<InitiateMultipartUploadResult xmlns=\"{S3_NAMESPACE}\"><Bucket>b</Bucket><Key>k&amp;</Key><UploadId>u1</UploadId></InitiateMultipartUploadResult>"
            )
        );
        let done = complete_multipart_upload("/b/k", "b", "k", "\"abc-2\"");
        assert!(done.ends_with(
            "<Location>/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;abc-2&quot;</ETag></CompleteMultipartUploadResult>"
        ));
        assert_eq!(complete_multipart_upload("/b/k", "b", "k", "abc-2"), done);
        let copy = copy_object_result("\"e\"", 0);
        assert!(copy.contains("<CopyObjectResult xmlns"));
        assert!(copy.contains(
            "<ETag>&quot;e&quot;</ETag><LastModified>1970-01-01T00:00:00.000Z</LastModified></CopyObjectResult>"
        ));
        assert!(copy_part_result("e", 0).contains("<CopyPartResult xmlns"));

        let parts = vec![
            PartInfo { number: 1, etag: "aa".into(), size: 5, last_modified_ms: 0, checksum: None },
            PartInfo {
                number: 3,
                etag: "bb".into(),
                size: 6,
                last_modified_ms: 0,
                checksum: Some(StoredChecksum { algorithm: "CRC32C".into(), value: "AAAAAA==".into() }),
            },
        ];
        let xml = list_parts("b", "k", "u", &parts, 2, 0, true, "o");
        assert!(xml.contains("<PartNumberMarker>0</PartNumberMarker><NextPartNumberMarker>3</NextPartNumberMarker><MaxParts>2</MaxParts><IsTruncated>true</IsTruncated>"));
        assert!(xml.contains("<Part><PartNumber>1</PartNumber><LastModified>1970-01-01T00:00:00.000Z</LastModified><ETag>&quot;aa&quot;</ETag><Size>5</Size></Part>"));
        assert!(xml.contains("<Size>6</Size><ChecksumCRC32C>AAAAAA==</ChecksumCRC32C></Part>"));
        assert!(list_parts("b", "k", "u", &[], 1000, 7, false, "o")
            .contains("<NextPartNumberMarker>7</NextPartNumberMarker>"));

        let ups = [UploadInfo { key: "k".into(), upload_id: "u".into(), initiated_ms: 0 }];
        let xml = list_multipart_uploads("b", &ups, "o");
        assert!(xml.contains("<Upload><Key>k</Key><UploadId>u</UploadId><Initiator><ID>o</ID>"));
        assert!(xml.contains("<Initiated>1970-01-01T00:00:00.000Z</Initiated></Upload>"));
    }

    #[test]
    fn delete_results() {
        let errs = vec![("bad".to_string(), S3Error::access_denied("Access Denied"))];
        let xml = delete_result(&["a".into(), "b".into()], &errs, false);
        assert!(xml.contains("<Deleted><Key>a</Key></Deleted><Deleted><Key>b</Key></Deleted>"));
        assert!(xml.contains(
            "<Error><Key>bad</Key><Code>AccessDenied</Code><Message>Access Denied</Message></Error></DeleteResult>"
        ));
        let quiet = delete_result(&["a".into()], &errs, true);
        assert!(!quiet.contains("Deleted") && quiet.contains("<Error>"));
    }

    #[test]
    fn location_and_post() {
        assert_eq!(location_constraint("us-east-1"), format!("{HEAD}<LocationConstraint xmlns=\"{S3_NAMESPACE}\"/>"));
        assert_eq!(
            location_constraint("eu-west-1"),
            format!("{HEAD}<LocationConstraint xmlns=\"{S3_NAMESPACE}\">eu-west-1</LocationConstraint>")
        );
        assert_eq!(
            post_response("/b/k", "b", "k", "\"e\""),
            format!("{HEAD}<PostResponse><Location>/b/k</Location><Bucket>b</Bucket><Key>k</Key><ETag>&quot;e&quot;</ETag></PostResponse>")
        );
    }

    #[test]
    fn complete_multipart_bodies() {
        // What botocore sends (etags quoted as returned by UploadPart).
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Part><ETag>"a54357aff0632cce46d942af68356b38"</ETag><PartNumber>1</PartNumber></Part>
  <Part><ETag>&quot;0c78aef83f66abc1fa1e8477f296d394&quot;</ETag><PartNumber>2</PartNumber><ChecksumCRC32>DUoRhQ==</ChecksumCRC32></Part>
  <Part><PartNumber> 3 </PartNumber><ETag>acbd18db4cc2f85cedef654fccc4a4d8</ETag></Part>
</CompleteMultipartUpload>"#;
        assert_eq!(
            parse_complete_multipart_upload(body).unwrap(),
            vec![
                (1, "a54357aff0632cce46d942af68356b38".to_string()),
                (2, "0c78aef83f66abc1fa1e8477f296d394".to_string()),
                (3, "acbd18db4cc2f85cedef654fccc4a4d8".to_string()),
            ]
        );
        let full = parse_complete_multipart_upload_parts(body).unwrap();
        assert_eq!(full[1].checksums, vec![(ChecksumAlgorithm::Crc32, "DUoRhQ==".to_string())]);
        for bad in [
            &b"<CompleteMultipartUpload></CompleteMultipartUpload>"[..],
            b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><PartNumber>2</PartNumber><ETag>a</ETag></Part></CompleteMultipartUpload>",
            b"<Other><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part></Other>",
            b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>a</ETag></Part>",
        ] {
            assert_eq!(parse_complete_multipart_upload(bad).unwrap_err(), S3Error::malformed_xml());
        }
    }

    #[test]
    fn delete_bodies() {
        let body = br#"<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Object><Key>a</Key></Object><Object><Key> spaced </Key><VersionId>v</VersionId></Object><Object><Key>x&amp;y&#13;&#x1F600;</Key></Object><Object><Key><![CDATA[<raw>]]></Key></Object><Quiet>true</Quiet></Delete>"#;
        let (keys, quiet) = parse_delete(body).unwrap();
        assert_eq!(keys, vec!["a", " spaced ", "x&y\r😀", "<raw>"]);
        assert!(quiet);
        let (_, quiet) = parse_delete(b"<Delete><Object><Key>a</Key></Object></Delete>").unwrap();
        assert!(!quiet);

        let many: String = (0..1001).map(|i| format!("<Object><Key>k{i}</Key></Object>")).collect();
        assert_eq!(parse_delete(format!("<Delete>{many}</Delete>").as_bytes()).unwrap_err(), S3Error::malformed_xml());
        let ok: String = (0..1000).map(|i| format!("<Object><Key>k{i}</Key></Object>")).collect();
        assert_eq!(parse_delete(format!("<Delete>{ok}</Delete>").as_bytes()).unwrap().0.len(), 1000);
        for bad in [
            &b"<Delete></Delete>"[..],
            b"<Delete><Object></Object></Delete>",
            b"<Delete><Object><Key>a</Key></Object><Quiet>maybe</Quiet></Delete>",
            b"<Delete><Object><Key>a<b/></Key></Object></Delete>",
            b"",
            b"not xml",
            b"<Delete><Object><Key>a</Key></Object></Delete><Delete/>",
            b"<Delete><Object><Key>a</Key></Object></Delete>trailing",
            b"<Delete><Object><Key>a</Key></Objec></Delete>",
            b"<Delete><Object><Key>&unknown;</Key></Object></Delete>",
            b"<Delete><Object><Key>\xff</Key></Object></Delete>",
        ] {
            assert_eq!(parse_delete(bad).unwrap_err(), S3Error::malformed_xml(), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn doctype_and_entities_are_refused() {
        let xxe = br#"<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><Delete><Object><Key>&x;</Key></Object></Delete>"#;
        assert_eq!(parse_delete(xxe).unwrap_err(), S3Error::malformed_xml());
        let bomb =
            br#"<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;">]><Delete><Object><Key>&b;</Key></Object></Delete>"#;
        assert_eq!(parse_delete(bomb).unwrap_err(), S3Error::malformed_xml());
        let deep = format!("<Delete>{}{}</Delete>", "<a>".repeat(100), "</a>".repeat(100));
        assert_eq!(parse_delete(deep.as_bytes()).unwrap_err(), S3Error::malformed_xml());
    }

    #[test]
    fn notification_round_trip() {
        // What boto3's put_bucket_notification_configuration sends.
        let body = br#"<NotificationConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <TopicConfiguration><Id>uploads</Id><Topic>arn:aws:iot:us-east-1:123456789012:topic/cams/uploads</Topic>
    <Event>s3:ObjectCreated:*</Event>
    <Filter><S3Key><FilterRule><Name>prefix</Name><Value>images/</Value></FilterRule><FilterRule><Name>Suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter>
  </TopicConfiguration>
  <QueueConfiguration><Queue>arn:aws:sqs:us-east-1:1:q</Queue><Event>s3:ObjectRemoved:Delete</Event><Event>s3:ObjectCreated:Put</Event></QueueConfiguration>
  <CloudFunctionConfiguration><Id>fn</Id><CloudFunction>arn:aws:lambda:us-east-1:1:function:f</CloudFunction><Event>s3:ObjectCreated:Post</Event></CloudFunctionConfiguration>
  <EventBridgeConfiguration/>
</NotificationConfiguration>"#;
        let cfg = parse_notification_configuration(body).unwrap();
        assert_eq!(cfg.rules.len(), 3);
        assert_eq!(
            cfg.rules[0],
            NotificationRule {
                id: "uploads".into(),
                events: vec!["s3:ObjectCreated:*".into()],
                prefix: Some("images/".into()),
                suffix: Some(".jpg".into()),
                target: Some("arn:aws:iot:us-east-1:123456789012:topic/cams/uploads".into()),
                target_kind: "Topic".into(),
            }
        );
        assert_eq!(cfg.rules[1].id, "QueueConfiguration-2");
        assert_eq!(cfg.rules[1].target_kind, "Queue");
        assert_eq!(cfg.rules[1].events, ["s3:ObjectRemoved:Delete", "s3:ObjectCreated:Put"]);
        assert_eq!(cfg.rules[2].target_kind, "CloudFunction");
        assert_eq!(cfg.rules[2].target.as_deref(), Some("arn:aws:lambda:us-east-1:1:function:f"));

        let written = notification_configuration(&cfg);
        assert!(written.contains(
            "<TopicConfiguration><Id>uploads</Id><Topic>arn:aws:iot:us-east-1:123456789012:topic/cams/uploads</Topic>\
             <Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>Prefix</Name><Value>images/</Value></FilterRule>\
             <FilterRule><Name>Suffix</Name><Value>.jpg</Value></FilterRule></S3Key></Filter></TopicConfiguration>"
        ));
        assert_eq!(parse_notification_configuration(written.as_bytes()).unwrap(), cfg);

        let empty = parse_notification_configuration(b"<NotificationConfiguration/>").unwrap();
        assert_eq!(empty, NotificationConfig::default());
        assert_eq!(
            notification_configuration(&empty),
            format!("{HEAD}<NotificationConfiguration xmlns=\"{S3_NAMESPACE}\"></NotificationConfiguration>")
        );
    }

    #[test]
    fn bad_notification_configurations() {
        let wrap = |inner: &str| format!("<NotificationConfiguration>{inner}</NotificationConfiguration>");
        let invalid = |inner: &str| parse_notification_configuration(wrap(inner).as_bytes()).unwrap_err();
        assert_eq!(
            invalid("<TopicConfiguration><Topic>t</Topic><Event>s3:Bogus</Event></TopicConfiguration>").code,
            "InvalidArgument"
        );
        assert_eq!(invalid("<TopicConfiguration><Topic>t</Topic></TopicConfiguration>"), S3Error::malformed_xml());
        assert_eq!(invalid("<Other/>"), S3Error::malformed_xml());
        let bad_rule = "<TopicConfiguration><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>middle</Name><Value>x</Value></FilterRule></S3Key></Filter></TopicConfiguration>";
        assert_eq!(invalid(bad_rule).code, "InvalidArgument");
        let twice = "<TopicConfiguration><Event>s3:ObjectCreated:*</Event><Filter><S3Key><FilterRule><Name>prefix</Name><Value>a</Value></FilterRule><FilterRule><Name>prefix</Name><Value>b</Value></FilterRule></S3Key></Filter></TopicConfiguration>";
        assert_eq!(invalid(twice).code, "InvalidArgument");
        let dup = "<TopicConfiguration><Id>x</Id><Event>s3:ObjectCreated:*</Event></TopicConfiguration><QueueConfiguration><Id>x</Id><Event>s3:ObjectCreated:*</Event></QueueConfiguration>";
        assert_eq!(invalid(dup).code, "InvalidArgument");
    }

    proptest! {
        #[test]
        fn delete_keys_round_trip(keys in proptest::collection::vec("[^\u{0}-\u{1f}\u{fffe}\u{ffff}]{1,20}", 1..10)) {
            let mut body = String::from("<Delete>");
            for k in &keys {
                body.push_str("<Object>");
                element(&mut body, "Key", k);
                body.push_str("</Object>");
            }
            body.push_str("</Delete>");
            let (parsed, quiet) = parse_delete(body.as_bytes()).unwrap();
            prop_assert_eq!(parsed, keys);
            prop_assert!(!quiet);
        }

        #[test]
        fn parsers_never_panic(body in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = parse_delete(&body);
            let _ = parse_complete_multipart_upload(&body);
            let _ = parse_notification_configuration(&body);
        }

        #[test]
        fn url_encoding_is_reversible(s in "\\PC{0,30}") {
            let enc = url_encode(&s);
            prop_assert!(enc.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.~/%".contains(&b)));
            let dec = percent_encoding::percent_decode_str(&enc).decode_utf8().unwrap();
            prop_assert_eq!(dec, s);
        }
    }
}
