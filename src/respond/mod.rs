//! What rempart answers itself: the rendered pages (offer, block, errors,
//! robots.txt) and the language and format chosen for each client.

pub mod clause;
pub mod markdown;
pub mod negotiate;
pub mod own;
pub mod pages;
