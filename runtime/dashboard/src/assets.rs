//! The page: HTML, CSS and JavaScript compiled into the binary (no build
//! step, no third-party code; charts are drawn on a canvas by `app.js`).

pub const INDEX: &str = include_str!("../assets/index.html");
pub const SCRIPT: &str = include_str!("../assets/app.js");
pub const STYLE: &str = include_str!("../assets/style.css");
pub const LOGIN: &str = include_str!("../assets/login.html");

/// The login page again, saying the token was wrong.
pub fn login_failed() -> String {
    LOGIN.replacen("<form", "<p class=\"error\" id=\"login-error\">Wrong token.</p>\n  <form", 1)
}
