//! Names decided over a whole track: every embedding attempt of good enough quality adds
//! evidence to a per-track vote, and the name shown is the vote's decision, not the latest
//! embedding's nearest person.
//!
//! ## The vote
//!
//! An attempt under the quality floor ([`Decider::min_quality`]) adds nothing. Any other adds
//! `quality * strength` to one candidate:
//!
//! * to the nearest person, when it is closer than the match threshold **and**, if the
//!   second-nearest *person* is within the threshold too, closer than them by at least the
//!   margin ([`Decider::match_margin`]); the strength is
//!   1 at [`STRONG_BELOW`] under the threshold or closer, falling linearly to 0.5 at the
//!   threshold, so a look-alike that scrapes under the threshold counts half;
//! * to "unknown" otherwise, at [`UNKNOWN_WEIGHT`] (half) the strength: no person under the
//!   threshold (0.25 at the threshold, rising to 0.5 at [`STRONG_BELOW`] over it), or two
//!   people within the threshold and within the margin of each other (0.25: ambiguous, whoever
//!   it is). "Nobody matched"
//!   is weaker evidence than a match: a face turning towards the camera is often unknown for
//!   a few frames before it is close enough to its person (Lacamoire's close-up on the clip:
//!   0.64-0.68 for four frames, then 0.565).
//!
//! Before each attempt's evidence is added, all evidence decays by [`DECAY`] (0.7), so the vote
//! follows the last three or four good attempts.
//!
//! **Deciding.** A track shows "unknown" until a person leads the vote, holds at least half of
//! its (decayed) evidence, and has gathered over the track (without decay) at least the
//! confidence bar ([`Decider::confidence_bar`], 0.6): a soft face that keeps matching gets there
//! in a few attempts (the clip's pianist, quality 0.35-0.45, in three), whatever the decay. One sharp, frontal attempt 0.03 or more under the threshold passes the bar at once
//! (so a still photo is named from its one frame); an attempt nearer the threshold, or of lower
//! quality, needs another one that agrees.
//!
//! ## Defaults, measured
//!
//! * `match-margin` 0.15, applied only when the runner-up matches too. The threshold already
//!   separates a nearest person from a runner-up beyond it, and there the gaps of correct names
//!   are small: on the sample clip (`expected/hamilton_reference.json`), Lacamoire is named at
//!   0.57-0.60 with Miranda 0.04 further (median 0.118). Two *different* people within the
//!   threshold of one face never happen with a gallery of distinct people: in the reference
//!   embeddings (`expected/embeddings.json`) against the `knn_examples/train` gallery, every
//!   runner-up is 0.68 or further, and on the clip both people are within 0.6 of no face.
//!   They happen with a duplicate or a look-alike: with `obama.jpg` enrolled as "obama" and
//!   `obama2.jpg` as "barack", Obama's other photos are within 0.6 of both, 0.026
//!   (`obama_and_biden.jpg`), 0.056 (`obama1.jpg`), 0.086 (`obama3.jpg`) and 0.143
//!   (`two_people.jpg`) apart as stills, and `obama3.jpg` 0.117 apart as video frames (0.316
//!   and 0.433, detected at 640 px). 0.15 keeps them all unknown in that gallery, while the
//!   portrait's own copies and crops (0.17 to 0.39 apart) are still named.
//!   (`facerec-model train` and `inspect` warn about such a pair.)
//! * `min-quality` 0.25 and `confidence-bar` 0.6: see [`crate::quality`] for the floor; the bar
//!   is what one sharp match at 0.57 or closer brings, so the repository's photos (matches at
//!   0.35-0.47) are named from a single frame, and the clip's Lacamoire (0.56-0.60) from one
//!   sharp attempt at 0.57 or from two or three agreeing ones.
//! * Frigate, which names a tracked object by a score- and area-weighted vote over its
//!   attempts, defaults to `unknown_score` 0.8 (below it an attempt is no candidate),
//!   `recognition_threshold` 0.9 (the weighted score a name needs), `min_area` 500 px² and
//!   `blur_confidence_filter` on (<https://docs.frigate.video/configuration/face_recognition>).
//!   Its scores are similarities (higher is closer); our distances fill the same roles: the
//!   match threshold for `unknown_score`, the confidence bar for `recognition_threshold`.
//!
//! **Ties.** Two people of similar weight on one track (a look-alike, or one person enrolled
//! under two names whose gap passes the margin) leave it unknown, as Frigate abstains: no name
//! is decided while the runner-up person has gathered [`TIE_SHARE`] (half) of what the leader
//! has, and a decided name gives way to unknown when another person has gathered
//! [`TIE_DROP_SHARE`] (0.8) of its evidence over the track *and* holds [`TIE_RECENT_SHARE`] (0.6)
//! of it now. Both conditions, so that one contrary attempt (a third of the evidence) or a
//! change of person under way (the old name's evidence decaying) is no tie.
//!
//! **Hysteresis.** A decided name gives way to another person only when that person holds
//! [`SWITCH_FACTOR`] (2) times the decided name's evidence for [`SWITCH_ATTEMPTS`] (2) good
//! attempts in a row, and to "unknown" when unknown holds [`UNKNOWN_SWITCH_FACTOR`] (1.25)
//! times its evidence and the confidence bar. Two people alternating as nearest never flip the
//! name from one to the other (the tie makes it unknown); a face that stopped matching loses it
//! within a few attempts.
//!
//! **Confidence** is the shown candidate's share of the track's evidence (0 before any good
//! attempt): 1 for a track whose every good attempt agreed, about 0.5 for one that is torn.

use crate::gallery::Match;

/// What "unknown" evidence counts for, against a match of the same strength.
pub const UNKNOWN_WEIGHT: f32 = 0.5;
/// Evidence kept from one good attempt to the next (the rest decays away).
pub const DECAY: f32 = 0.7;
/// How far under (or over) the match threshold a distance counts in full.
pub const STRONG_BELOW: f32 = 0.15;
/// What another person must hold, as a multiple of the decided name's evidence, to replace it...
pub const SWITCH_FACTOR: f32 = 2.0;
/// ...for this many good attempts in a row.
pub const SWITCH_ATTEMPTS: u32 = 2;
/// What "unknown" must hold, as a multiple of the decided name's evidence and at least the
/// confidence bar, to replace it (at once): a name whose face stopped matching is dropped within
/// a few frames (Lacamoire's close-up on the clip: 0.59 on frame 39, then 0.62, 0.63, 0.69),
/// while a soft face dipping just over the threshold keeps it (the pianist: four attempts at
/// 0.61-0.62 between matches at 0.58).
pub const UNKNOWN_SWITCH_FACTOR: f32 = 1.25;
/// No name is decided while the runner-up person has gathered at least this share of what the
/// leading person has, over the whole track.
pub const TIE_SHARE: f32 = 0.5;
/// A decided name gives way to unknown when another person has gathered this share of its
/// evidence over the track...
pub const TIE_DROP_SHARE: f32 = 0.8;
/// ...and holds this share of it now (decayed evidence; strict alternation of two people
/// settles at 0.7).
pub const TIE_RECENT_SHARE: f32 = 0.6;

/// The settings of the vote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Decider {
    pub match_threshold: f32,
    pub match_margin: f32,
    pub min_quality: f32,
    pub confidence_bar: f32,
}

/// What one attempt is evidence for.
#[derive(Debug, Clone, PartialEq)]
pub enum Evidence {
    /// Too poor to count.
    Ignored,
    Person(String, f32),
    Unknown(f32),
}

impl Decider {
    /// The evidence one attempt of `quality` with nearest match `m` gives.
    pub fn evidence(&self, quality: f32, m: &Match) -> Evidence {
        if quality.is_nan() || quality < self.min_quality {
            return Evidence::Ignored;
        }
        let Some(distance) = m.distance else {
            // An empty gallery: nobody to name.
            return Evidence::Unknown(UNKNOWN_WEIGHT * quality);
        };
        let t = self.match_threshold;
        let strong = STRONG_BELOW.min(t).max(f32::EPSILON);
        match &m.name {
            Some(name) => {
                // Two people within the threshold: a duplicate or a look-alike, unless one is
                // clearly nearer. A runner-up beyond the threshold is no match at all.
                let contested = m
                    .second
                    .is_some_and(|s| s <= t && s - distance < self.match_margin);
                if contested {
                    return Evidence::Unknown(UNKNOWN_WEIGHT * 0.5 * quality);
                }
                let strength = 1.0 - 0.5 * ((distance - (t - strong)) / strong).clamp(0.0, 1.0);
                Evidence::Person(name.clone(), quality * strength)
            }
            None => {
                let strength = 0.5 + 0.5 * ((distance - t) / strong).clamp(0.0, 1.0);
                Evidence::Unknown(UNKNOWN_WEIGHT * quality * strength)
            }
        }
    }
}

/// What `who` holds in `of` (evidence or gathered), 0 when absent.
fn share_of(of: &[(Option<String>, f32)], who: Option<&str>) -> f32 {
    of.iter()
        .find(|(c, _)| c.as_deref() == who)
        .map_or(0.0, |(_, w)| *w)
}

/// The largest amount in `of` held by a person other than `who`.
fn strongest_other(of: &[(Option<String>, f32)], who: Option<&str>) -> f32 {
    of.iter()
        .filter(|(c, _)| c.is_some() && c.as_deref() != who)
        .map(|(_, w)| *w)
        .fold(0.0, f32::max)
}

/// One track's vote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Vote {
    /// Evidence per candidate; `None` is "unknown".
    evidence: Vec<(Option<String>, f32)>,
    /// The same without decay: what a candidate has gathered over the whole track.
    gathered: Vec<(Option<String>, f32)>,
    decided: Option<String>,
    /// A candidate that has held `SWITCH_FACTOR` times the decided name's evidence, and for
    /// how many good attempts in a row.
    challenger: Option<(Option<String>, u32)>,
    /// Attempts, and those over the quality floor.
    pub attempts: u32,
    pub good_attempts: u32,
    /// The latest attempt's quality and nearest match.
    pub last_quality: Option<f32>,
    pub last_match: Option<Match>,
    /// Whether the latest good attempt was evidence for the shown label.
    agreed: bool,
}

impl Vote {
    /// The name shown: the decided person, or `None` (unknown).
    pub fn name(&self) -> Option<&str> {
        self.decided.as_deref()
    }

    fn weight(&self, who: Option<&str>) -> f32 {
        share_of(&self.evidence, who)
    }

    fn total(&self) -> f32 {
        self.evidence.iter().map(|(_, w)| w).sum()
    }

    /// Whether the track's name needs watching: the latest attempt over the quality floor was
    /// not evidence for it, or matched it within half of [`STRONG_BELOW`] of the threshold (a
    /// weak match that the next frames may well contradict). The engine then embeds the track
    /// on every detection frame instead of every `recognize-interval`.
    pub fn in_doubt(&self, decider: &Decider) -> bool {
        if self.good_attempts == 0 {
            return false;
        }
        let weak = self.decided.is_some()
            && self
                .last_match
                .as_ref()
                .and_then(|m| m.distance)
                .is_some_and(|d| d > decider.match_threshold - STRONG_BELOW / 2.0);
        !self.agreed || weak
    }

    /// The shown candidate's share of the evidence, 0..1 (0 before any good attempt).
    pub fn confidence(&self) -> f32 {
        let total = self.total();
        if total > 0.0 {
            (self.weight(self.decided.as_deref()) / total).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// The candidate with the most evidence.
    fn leader(&self) -> Option<(Option<&str>, f32)> {
        self.evidence
            .iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(c, w)| (c.as_deref(), *w))
    }

    /// Counts an attempt that was not embedded because its quality is under the floor.
    pub fn skip(&mut self, quality: f32) {
        self.attempts += 1;
        self.last_quality = Some(quality);
    }

    /// Adds one attempt; returns whether the shown name changed.
    pub fn add(&mut self, decider: &Decider, quality: f32, m: Match) -> bool {
        self.attempts += 1;
        self.last_quality = Some(quality);
        let evidence = decider.evidence(quality, &m);
        self.last_match = Some(m);
        let (who, weight) = match evidence {
            Evidence::Ignored => return false,
            Evidence::Person(name, w) => (Some(name), w),
            Evidence::Unknown(w) => (None, w),
        };
        self.good_attempts += 1;

        for (_, w) in &mut self.evidence {
            *w *= DECAY;
        }
        match self.evidence.iter_mut().find(|(c, _)| *c == who) {
            Some((_, w)) => *w += weight,
            None => self.evidence.push((who.clone(), weight)),
        }
        match self.gathered.iter_mut().find(|(c, _)| *c == who) {
            Some((_, w)) => *w += weight,
            None => self.gathered.push((who.clone(), weight)),
        }
        let changed = self.decide(decider);
        self.agreed = who == self.decided;
        changed
    }

    fn decide(&mut self, decider: &Decider) -> bool {
        let total = self.total();
        let Some((leader, lead)) = self.leader() else {
            return false;
        };
        let leader = leader.map(str::to_string);
        match &self.decided {
            None => {
                // The bar counts everything the leader gathered (a soft face that keeps matching
                // gets there); the share, the recent evidence (it must lead now).
                let gathered = share_of(&self.gathered, leader.as_deref());
                let torn =
                    strongest_other(&self.gathered, leader.as_deref()) >= TIE_SHARE * gathered;
                if leader.is_some()
                    && !torn
                    && gathered >= decider.confidence_bar
                    && lead * 2.0 >= total
                {
                    self.decided = leader;
                    self.challenger = None;
                    return true;
                }
                false
            }
            Some(current) => {
                let held = self.weight(Some(current));
                let gathered = share_of(&self.gathered, Some(current));
                let other_gathered = strongest_other(&self.gathered, Some(current));
                let other_now = strongest_other(&self.evidence, Some(current));
                let similar =
                    |a: f32, b: f32, share: f32| a > 0.0 && b > 0.0 && a.min(b) >= share * a.max(b);
                let torn = similar(other_gathered, gathered, TIE_DROP_SHARE)
                    && similar(other_now, held, TIE_RECENT_SHARE);
                if torn {
                    self.decided = None;
                    self.challenger = None;
                    return true;
                }
                let (factor, attempts) = if leader.is_some() {
                    (SWITCH_FACTOR, SWITCH_ATTEMPTS)
                } else {
                    (UNKNOWN_SWITCH_FACTOR, 1)
                };
                if leader.as_deref() == Some(current.as_str())
                    || lead < factor * held
                    || lead < decider.confidence_bar
                {
                    self.challenger = None;
                    return false;
                }
                let count = match &self.challenger {
                    Some((c, n)) if *c == leader => n + 1,
                    _ => 1,
                };
                if count >= attempts {
                    self.decided = leader;
                    self.challenger = None;
                    true
                } else {
                    self.challenger = Some((leader, count));
                    false
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: Decider = Decider {
        match_threshold: 0.6,
        match_margin: 0.05,
        min_quality: 0.3,
        confidence_bar: 0.6,
    };

    fn m(name: Option<&str>, distance: f32, second: f32) -> Match {
        Match {
            name: name.map(str::to_string),
            distance: Some(distance),
            second: Some(second),
        }
    }

    #[test]
    fn one_strong_attempt_names_at_once_a_borderline_one_needs_a_second() {
        let mut v = Vote::default();
        assert!(v.add(&D, 0.9, m(Some("obama"), 0.40, 0.9)));
        assert_eq!((v.name(), v.confidence()), (Some("obama"), 1.0));

        // 0.58 is 0.02 under the threshold: strength 0.5 + 0.5 * 0.02 / 0.15 = 0.567.
        let mut v = Vote::default();
        assert!(!v.add(&D, 1.0, m(Some("alex"), 0.58, 0.7)));
        assert_eq!(v.name(), None);
        assert!(v.add(&D, 1.0, m(Some("alex"), 0.58, 0.7)));
        assert_eq!(v.name(), Some("alex"));
    }

    #[test]
    fn attempts_under_the_quality_floor_add_nothing() {
        let mut v = Vote::default();
        for _ in 0..10 {
            assert!(!v.add(&D, 0.29, m(Some("obama"), 0.3, 0.9)));
        }
        assert_eq!((v.name(), v.good_attempts, v.attempts), (None, 0, 10));
        assert_eq!(v.confidence(), 0.0);
        assert_eq!(v.last_quality, Some(0.29));
    }

    #[test]
    fn the_margin_rule_turns_a_near_tie_into_unknown_evidence() {
        // Nearest "obama" at 0.40, second-nearest person "barack" at 0.43: under the margin.
        let mut v = Vote::default();
        for _ in 0..5 {
            assert!(!v.add(&D, 1.0, m(Some("obama"), 0.40, 0.43)));
            assert!(!v.add(&D, 1.0, m(Some("barack"), 0.41, 0.42)));
        }
        assert_eq!(v.name(), None);
        assert_eq!(v.confidence(), 1.0, "all the evidence says unknown");
        assert_eq!(
            D.evidence(1.0, &m(Some("obama"), 0.40, 0.46)),
            Evidence::Person("obama".into(), 1.0),
            "a gap of 0.06 passes a margin of 0.05"
        );
        assert_eq!(
            D.evidence(1.0, &m(Some("alex"), 0.40, 0.61)),
            Evidence::Person("alex".into(), 1.0),
            "a runner-up beyond the threshold is no match, however near"
        );
    }

    #[test]
    fn a_decided_name_resists_a_challenger_until_it_leads_for_long_enough() {
        let mut v = Vote::default();
        for _ in 0..3 {
            v.add(&D, 1.0, m(Some("lin"), 0.45, 0.7));
        }
        assert_eq!(v.name(), Some("lin"));
        // One strong attempt for someone else changes nothing, nor does "unknown" once.
        assert!(!v.add(&D, 1.0, m(Some("alex"), 0.40, 0.7)));
        assert!(!v.add(&D, 1.0, m(None, 0.8, 0.9)));
        assert_eq!(v.name(), Some("lin"));
        // Sustained evidence for alex: he must hold 2x lin's evidence twice in a row.
        let mut changed_at = None;
        for i in 0..10 {
            if v.add(&D, 1.0, m(Some("alex"), 0.40, 0.7)) {
                changed_at = Some(i);
                break;
            }
        }
        assert_eq!(v.name(), Some("alex"));
        // lin 1.07 decays by 0.7 a step; alex (0.7) gains 1 a step: 2x is first reached on the
        // 2nd sustained attempt (2.04 against 0.53), and held on the 3rd.
        assert_eq!(changed_at, Some(2));
        assert!(
            v.confidence() > 0.5 && v.confidence() < 1.0,
            "{}",
            v.confidence()
        );
    }

    #[test]
    fn alternating_near_ties_never_flip_the_name() {
        // Two names for one person, alternating nearest with gaps just over the margin: named
        // on the first attempt, then unknown for good (the tie), never the other name.
        let mut v = Vote::default();
        let mut shown = vec![];
        for i in 0..40 {
            let a = if i % 2 == 0 { "obama" } else { "barack" };
            if v.add(&D, 1.0, m(Some(a), 0.40, 0.46)) {
                shown.push(v.name().unwrap_or("unknown").to_string());
            }
        }
        assert_eq!(shown, ["obama", "unknown"]);
    }

    #[test]
    fn two_people_of_similar_weight_leave_the_track_unknown() {
        // "obama" and "barack" both enrolled, each attempt 0.58 from one of them and the other
        // beyond the threshold (so the margin rule does not apply): they alternate as nearest.
        // Without the tie rule the third attempt would name obama (decayed 0.84 against 0.40).
        let mut v = Vote::default();
        for i in 0..12 {
            let a = if i % 2 == 0 { "obama" } else { "barack" };
            assert!(!v.add(&D, 1.0, m(Some(a), 0.58, 0.64)), "attempt {i}");
        }
        assert_eq!(v.name(), None);
        // Strong attempts: the first names at once; the other person's equal answer makes it a
        // tie, and the track unknown, from then on.
        let mut v = Vote::default();
        let mut shown = Vec::new();
        for i in 0..12 {
            let a = if i % 2 == 0 { "obama" } else { "barack" };
            v.add(&D, 1.0, m(Some(a), 0.40, 0.46));
            shown.push(v.name().unwrap_or("unknown").to_string());
        }
        assert_eq!(shown[..2], ["obama", "unknown"]);
        assert!(shown[1..].iter().all(|s| s == "unknown"), "{shown:?}");
        // A clear leader is named once the runner-up has under half of what it gathered: one
        // attempt more than without a runner-up at all.
        let mut v = Vote::default();
        v.add(&D, 1.0, m(Some("barack"), 0.58, 0.64));
        assert!(!v.add(&D, 1.0, m(Some("obama"), 0.58, 0.64)), "1:1, torn");
        assert!(!v.add(&D, 1.0, m(Some("obama"), 0.58, 0.64)), "2:1, torn");
        assert!(v.add(&D, 1.0, m(Some("obama"), 0.58, 0.64)), "3:1");
        assert_eq!(v.name(), Some("obama"));
    }

    #[test]
    fn no_gallery_and_far_faces_stay_unknown() {
        let mut v = Vote::default();
        v.add(
            &D,
            1.0,
            Match {
                name: None,
                distance: None,
                second: None,
            },
        );
        assert_eq!((v.name(), v.confidence()), (None, 1.0));
        // Unknown evidence is worth half a match: 0.62 gives 0.5 * (0.5 + 0.5 * 0.02 / 0.15).
        let Evidence::Unknown(w) = D.evidence(1.0, &m(None, 0.62, 0.8)) else {
            panic!("0.62 is unknown evidence");
        };
        assert!((w - 0.5 * (0.5 + 0.5 * 0.02 / 0.15)).abs() < 1e-6, "{w}");
        // Four unknown attempts, then the person at 0.565 (Lacamoire's close-up on the clip):
        // named on the second matching attempt.
        let mut v = Vote::default();
        for d in [0.678, 0.65, 0.637, 0.651] {
            assert!(!v.add(&D, 0.9, m(None, d, d + 0.04)));
        }
        assert!(!v.add(&D, 0.9, m(Some("alex"), 0.565, 0.632)));
        assert!(v.add(&D, 0.9, m(Some("alex"), 0.566, 0.662)));
        assert_eq!(v.name(), Some("alex"));
    }
}
