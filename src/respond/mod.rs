//! What rempart answers itself: the rendered pages (offer, block, errors,
//! robots.txt) and the language and format chosen for each client.

pub mod negotiate;
pub mod own;
pub mod pages;
