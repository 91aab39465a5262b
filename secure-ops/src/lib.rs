//! secure-ops (work in progress).
