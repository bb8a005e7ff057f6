"""minirt doctor: check the kernel features minirt needs and what on this host fights it."""

from minirt.cliparse import parse


def main(args: list[str]) -> int:
    from minirt import doctor

    parse([], args, stop_at_operand=False, prog="minirt doctor")
    worst = 0
    for status, what, advice in doctor.check():
        print(f"{status:<5} {what}" + (f"\n      {advice}" if advice else ""))
        worst = max(worst, {"ok": 0, "warn": 1, "fail": 2}[status])
    return 0 if worst < 2 else 1
