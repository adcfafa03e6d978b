//! Piece selection: rarest first, endgame.
//!
//! Nothing here yet: the peer engine issue fills it.
