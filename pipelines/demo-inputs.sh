# shellcheck shell=bash
# Sourced by launcher/demo.sh and pipelines/demo.sh (needs $repo): demo_inputs WHO DOING FALLBACK
# sets $clip and $faces. INPUT and FACES_DIR win; what they leave open comes from
# demo-assets.sh, whose exit 3 means "not available" (it said why): the missing one stays empty
# and "WHO: DOING without them: FALLBACK, no face is known" (as applies) goes to stderr.
demo_inputs() {
    local who="$1" doing="$2" clip_fallback="$3" status=0 assets what=""
    clip="${INPUT:-}"
    faces="${FACES_DIR:-}"
    if [ -n "$clip" ] && [ -n "$faces" ]; then
        return 0
    fi
    # shellcheck disable=SC2154 # $repo is the sourcing script's
    assets="$("$repo/pipelines/demo-assets.sh")" || status=$?
    case "$status" in
        0)
            clip="${clip:-$assets/short_hamilton_clip.mp4}"
            faces="${faces:-$assets}"
            ;;
        3)
            [ -z "$clip" ] && what="$clip_fallback"
            [ -z "$faces" ] && what="${what:+$what, }no face is known"
            echo "$who: $doing without them: $what" >&2
            ;;
        *) exit "$status" ;;
    esac
}
