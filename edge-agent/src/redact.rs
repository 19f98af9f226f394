//! Addresses fit to log or show: camera URLs carry passwords (`rtsp://user:password@host`),
//! which officers' tablets, log collectors and MQTT subscribers must never learn.

/// A camera or server address fit to log or show: the password of a `scheme://user:password@host`
/// address becomes `***` (officers' tablets and log collectors must not learn it).
pub fn redact_address(address: &str) -> String {
    match password_of(address) {
        Some(p) => address.replacen(&format!(":{p}@"), ":***@", 1),
        None => address.to_owned(),
    }
}

/// `text` with the password of `address`, if it has one, replaced by `***` (error messages of
/// camera libraries may quote the address they were given).
pub fn scrub_password(text: &str, address: &str) -> String {
    match password_of(address) {
        Some(p) => text.replace(p, "***"),
        None => text.to_owned(),
    }
}

fn password_of(address: &str) -> Option<&str> {
    let (_, rest) = address.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let userinfo = match authority.rsplit_once('@') {
        Some((userinfo, _)) => userinfo,
        // A password with '/', '?' or '#' written unescaped (cameras' set-up pages allow them):
        // the user info then runs to the last '@'. Redacting too much beats leaking.
        None => rest.rsplit_once('@')?.0,
    };
    let (_, password) = userinfo.split_once(':')?;
    (!password.is_empty()).then_some(password)
}
