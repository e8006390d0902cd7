# Rendered by render-profiles. Login shells reset PATH in /etc/profile (Codex runs every command
# with `bash -lc`), which would drop the exec-time guard shims: put them back in front.
case ":$PATH:" in
  *":/usr/lib/agent-sandbox/shims:"*) ;;
  *) PATH="/usr/lib/agent-sandbox/shims:$PATH"; export PATH ;;
esac
