"""The ci run report: one normalised JSON document from each CLI's machine output.

Every CLI exits 0 when a tool call was denied (docs/cli-facts.md), so denials are read from the output
itself: Claude stream-json `system/permission_denied` lines and the result's `permission_denials`;
Gemini stream-json `tool_result` with `error.type == "policy_violation"`; Codex only on stderr
(`Rejected(`). Each denial is mapped to the rule that fired by classifying the denied command
with the guard when it is importable, else by the rule id named in the denial text.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field

REPORT_FORMAT = 1
DENIAL_EXIT = 3


@dataclass
class ToolCall:
    id: str
    tool: str
    command: str | None
    input: object = None
    status: str = "started"  # started | ok | error | denied
    output: str | None = None

    def to_json(self) -> dict:
        return {"id": self.id, "tool": self.tool, "command": self.command, "input": self.input,
                "status": self.status}


@dataclass
class Denial:
    tool_call_id: str | None
    tool: str | None
    command: str | None
    message: str
    rule: str | None = None
    rule_source: str = "none"  # guard | message | none
    tripwire: bool | None = None

    def to_json(self) -> dict:
        return {"tool_call_id": self.tool_call_id, "tool": self.tool, "command": self.command,
                "rule": self.rule, "rule_source": self.rule_source, "tripwire": self.tripwire,
                "message": self.message}


@dataclass
class Parsed:
    calls: dict[str, ToolCall] = field(default_factory=dict)
    denials: list[Denial] = field(default_factory=list)
    unparsed_lines: int = 0
    session: dict = field(default_factory=dict)

    def call(self, call_id: str, tool: str, command: str | None, tool_input=None) -> ToolCall:
        if call_id not in self.calls:
            self.calls[call_id] = ToolCall(call_id, tool, command, tool_input)
        return self.calls[call_id]

    def deny(self, call_id: str | None, message: str, tool: str | None = None, command: str | None = None) -> None:
        call = self.calls.get(call_id) if call_id else None
        if call is not None:
            call.status = "denied"
            tool = tool or call.tool
            command = command or call.command
        for existing in self.denials:
            if call_id and existing.tool_call_id == call_id:
                if message and message not in existing.message:
                    existing.message = (existing.message + " | " + message).strip(" |")
                return
        self.denials.append(Denial(call_id, tool, command, message))


def _text_of(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(_text_of(part.get("text", "") if isinstance(part, dict) else part) for part in content)
    if isinstance(content, dict):
        return str(content.get("text", "") or content.get("message", "") or json.dumps(content))
    return "" if content is None else str(content)


def _json_lines(text: str, parsed: Parsed):
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            event = json.loads(line)
        except ValueError:
            parsed.unparsed_lines += 1
            continue
        if isinstance(event, dict):
            yield event


# ---- Claude stream-json ------------------------------------------------------------------------

CLAUDE_DENIED = re.compile(r"permission to use .* has been denied|hook .*(block|denied)|denied by", re.I)


def _claude_command(tool_input) -> str | None:
    if isinstance(tool_input, dict):
        return tool_input.get("command") or tool_input.get("file_path") or tool_input.get("path")
    return None


def parse_claude(stdout: str, stderr: str) -> Parsed:
    parsed = Parsed()
    for event in _json_lines(stdout, parsed):
        kind, subtype = event.get("type"), event.get("subtype")
        if kind == "system" and subtype == "init":
            parsed.session = {"permission_mode": event.get("permissionMode"), "session_id": event.get("session_id")}
        elif kind == "system" and subtype == "permission_denied":
            tool_input = event.get("tool_input") or event.get("input")
            call_id = event.get("tool_use_id")
            tool = event.get("tool_name")
            if call_id and tool:
                parsed.call(call_id, tool, _claude_command(tool_input), tool_input)
            parsed.deny(call_id, _text_of(event.get("message") or event.get("reason") or ""), tool,
                        _claude_command(tool_input))
        elif kind == "assistant":
            for block in (event.get("message") or {}).get("content") or []:
                if isinstance(block, dict) and block.get("type") == "tool_use":
                    parsed.call(block.get("id", ""), block.get("name", ""), _claude_command(block.get("input")),
                                block.get("input"))
        elif kind == "user":
            for block in (event.get("message") or {}).get("content") or []:
                if not isinstance(block, dict) or block.get("type") != "tool_result":
                    continue
                call = parsed.calls.get(block.get("tool_use_id", ""))
                text = _text_of(block.get("content"))
                if call is None:
                    continue
                call.output = text
                if call.status != "denied":
                    call.status = "error" if block.get("is_error") else "ok"
                if block.get("is_error") and CLAUDE_DENIED.search(text):
                    parsed.deny(call.id, text)
        elif kind == "result":
            for denial in event.get("permission_denials") or []:
                tool_input = denial.get("tool_input")
                call_id = denial.get("tool_use_id")
                call = parsed.calls.get(call_id)
                message = call.output if call and call.output else ""
                if call_id and denial.get("tool_name"):
                    parsed.call(call_id, denial["tool_name"], _claude_command(tool_input), tool_input)
                parsed.deny(call_id, message or "", denial.get("tool_name"), _claude_command(tool_input))
            parsed.session["result"] = {"subtype": subtype, "is_error": event.get("is_error")}
    return parsed


# ---- Gemini stream-json ------------------------------------------------------------------------

def parse_gemini(stdout: str, stderr: str) -> Parsed:
    parsed = Parsed()
    for event in _json_lines(stdout, parsed):
        kind = event.get("type")
        if kind == "init":
            parsed.session = {"session_id": event.get("session_id"), "model": event.get("model")}
        elif kind == "tool_use":
            params = event.get("parameters")
            command = params.get("command") if isinstance(params, dict) else None
            parsed.call(event.get("tool_id", ""), event.get("tool_name", ""), command, params)
        elif kind == "tool_result":
            call = parsed.calls.get(event.get("tool_id", ""))
            error = event.get("error") if isinstance(event.get("error"), dict) else {}
            if call is not None and call.status != "denied":
                call.status = "ok" if event.get("status") == "success" else "error"
            if event.get("status") == "error" and error.get("type") == "policy_violation":
                parsed.deny(event.get("tool_id"), _text_of(error.get("message", "")))
        elif kind == "result":
            parsed.session["result"] = {"status": event.get("status")}
    return parsed


# ---- Codex exec --json (+ stderr) -------------------------------------------------------------

# A rejected command never reaches --json; it exists only as a stderr line, one of:
#   ... exec_command failed: CreateProcess { message: "Rejected(\"`CMD` rejected: WHY\")" }   (execpolicy rules)
#   ... error=Command blocked by PreToolUse hook: WHY [CMD]. Command: CMD                      (the guard hook)
CODEX_REJECTED = re.compile(r'Rejected\(\\?"(?P<reason>.*?)\\?"\)')
CODEX_COMMAND_IN_REASON = re.compile(r"`(?P<command>[^`]+)`")
CODEX_HOOK_BLOCKED = re.compile(r"error=(?P<reason>Command blocked by \S+ hook: .*?)(?:\. Command: (?P<command>.*))?$")


def _codex_denial(line: str) -> tuple[str, str | None] | None:
    """(reason, command) of a stderr line that reports a refused command, else None."""
    if "Rejected(" in line:
        match = CODEX_REJECTED.search(line)
        reason = match.group("reason") if match else line.strip()
        command = CODEX_COMMAND_IN_REASON.search(reason)
        return reason, command.group("command") if command else None
    match = CODEX_HOOK_BLOCKED.search(line.rstrip())
    if match:
        return match.group("reason"), match.group("command")
    return None


def parse_codex(stdout: str, stderr: str) -> Parsed:
    parsed = Parsed()
    for event in _json_lines(stdout, parsed):
        kind = event.get("type")
        item = event.get("item") if isinstance(event.get("item"), dict) else None
        if kind == "thread.started":
            parsed.session = {"thread_id": event.get("thread_id")}
        elif item and item.get("type") in ("command_execution", "mcp_tool_call", "file_change", "web_search"):
            command = item.get("command")
            call = parsed.call(item.get("id", ""), item.get("type"), command,
                               {k: v for k, v in item.items() if k != "aggregated_output"})
            if kind == "item.completed":
                call.input = {k: v for k, v in item.items() if k != "aggregated_output"}
                if call.status != "denied":
                    ok = item.get("status") == "completed" and item.get("exit_code", 0) in (0, None)
                    call.status = "ok" if ok else "error"
                call.output = item.get("aggregated_output")
    denials = [found for found in map(_codex_denial, stderr.splitlines()) if found]
    for number, (reason, command) in enumerate(denials):
        call_id = f"rejected-{number}"
        parsed.call(call_id, "command_execution", command, {"command": command}).status = "denied"
        parsed.deny(call_id, reason)
    return parsed


PARSERS = {"claude": parse_claude, "codex": parse_codex, "gemini": parse_gemini}


# ---- rule attribution --------------------------------------------------------------------------

def _classify(command: str, runtime: dict):
    try:
        from guard.classify import classify
    except ImportError:
        return None
    try:
        decision = classify(command, runtime)
    except Exception:  # the guard is another part; a failure there must not lose the report
        return None
    rule = getattr(decision, "rule", None)
    verdict = getattr(decision, "decision", None)
    if isinstance(decision, dict):
        rule, verdict = decision.get("rule"), decision.get("decision")
    if verdict == "deny" and rule:
        return rule.get("id") if isinstance(rule, dict) else str(rule)
    return None


def _rule_in_text(text: str, rule_ids: list[str]) -> str | None:
    found = [rule_id for rule_id in rule_ids if re.search(rf"(?<![a-z0-9-]){re.escape(rule_id)}(?![a-z0-9-])", text)]
    return max(found, key=len) if found else None


SHELL_WRAPPER = re.compile(r"^(?:\S*/)?(?:ba|z|da)?sh\s+-l?c\s+'(?P<inner>.*)'$", re.S)


def _commands_to_classify(command: str) -> list[str]:
    # Codex reports `/bin/bash -lc 'CMD'`; classify the wrapper first, then what it runs.
    wrapped = SHELL_WRAPPER.match(command)
    return [command, wrapped.group("inner")] if wrapped else [command]


def attribute(denials: list[Denial], runtime: dict) -> None:
    rules = {rule.get("id"): rule for rule in runtime.get("rules", []) if isinstance(rule, dict)}
    for denial in denials:
        rule_id = None
        for command in _commands_to_classify(denial.command) if denial.command else []:
            rule_id = _classify(command, runtime)
            if rule_id:
                break
        if rule_id:
            denial.rule, denial.rule_source = rule_id, "guard"
        else:
            rule_id = _rule_in_text(denial.message or "", list(rules))
            if rule_id:
                denial.rule, denial.rule_source = rule_id, "message"
        if denial.rule in rules:
            denial.tripwire = bool(rules[denial.rule].get("tripwire"))


# ---- the document ------------------------------------------------------------------------------

def build(tool: str, profile: str, argv: list[str], parsed: Parsed, cli_exit: int, exit_code: int,
          signal_number: int | None, started: str, finished: str, duration: float) -> dict:
    return {
        "format": REPORT_FORMAT,
        "tool": tool,
        "profile": profile,
        "argv": argv,
        "exit_code": exit_code,
        "cli_exit_code": cli_exit,
        "signal": signal_number,
        "started": started,
        "finished": finished,
        "duration_seconds": round(duration, 3),
        "session": parsed.session,
        "tool_calls": [call.to_json() for call in parsed.calls.values()],
        "denials": [denial.to_json() for denial in parsed.denials],
        "denied": bool(parsed.denials),
        "unparsed_lines": parsed.unparsed_lines,
    }


def exit_code_for(cli_exit: int, parsed: Parsed) -> int:
    if cli_exit != 0:
        return cli_exit
    return DENIAL_EXIT if parsed.denials else 0


def write_atomically(path: str, document: dict) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary = os.path.join(folder, f".{os.path.basename(path)}.{os.getpid()}.tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        json.dump(document, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(temporary, path)
