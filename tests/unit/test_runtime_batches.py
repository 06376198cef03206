"""HAProxy runtime commands go in as few admin-socket lines as fit (`ingress.haproxy.batched`),
and a refusal anywhere in a line's answer is found (`refusals`)."""

from __future__ import annotations

from dockyard.ingress.haproxy import batched, refusals


def test_commands_share_lines_up_to_the_limit_and_keep_their_order() -> None:
    commands = [f"set server b{i}/s0 state ready" for i in range(10)]
    assert batched(commands) == [";".join(commands)]
    lines = batched(commands, limit=70)
    assert all(len(line) <= 70 for line in lines) and len(lines) == 5
    assert ";".join(lines).split(";") == commands
    assert batched([]) == []
    assert batched(commands, limit=0) == commands  # one command per connection


def test_a_long_command_is_a_line_of_its_own_and_a_semicolon_in_one_is_escaped() -> None:
    long = "add map /data/hosts.map " + "h" * 100 + " b"
    assert batched(["set server b/s0 state maint", long, "x"], limit=50) == [
        "set server b/s0 state maint", long, "x"]
    assert batched(["add map /a;b/hosts.map h b", "x"]) == ["add map /a\\;b/hosts.map h b;x"]


def test_only_answers_that_are_not_success_are_refusals() -> None:
    ok = ("IP changed from '0.0.0.0' to '10.0.0.2', port changed from '+0' to '80' by 'stats "
          "socket command'\n\n\n\nno need to change the addr, port changed from '80' to '81' "
          "by 'stats socket command'\n\n\n")
    assert refusals(ok) == []
    assert refusals(ok + "No such server.\n\n") == ["No such server."]
