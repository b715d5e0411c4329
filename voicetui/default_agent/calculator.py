"""A safe calculator: arithmetic expressions evaluated from their AST, never with ``eval``.

Allowed: numbers, ``+ - * / // % **``, parentheses, unary ``-``/``+``, the constants ``pi``,
``e``, ``tau``, and the functions in :data:`FUNCTIONS` (positional arguments only). Anything
else (names, attributes, subscripts, other calls, strings, comparisons...) is refused with a
:class:`CalculatorError`. Sizes are bounded so that no expression can make the process hang or
run out of memory.
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from typing import Any

Number = int | float

MAX_EXPRESSION_LENGTH = 300
MAX_INT_BITS = 4096  # ~1200 decimal digits
MAX_EXPONENT = 10_000
MAX_FACTORIAL = 500


class CalculatorError(ValueError):
    """The expression is not allowed or cannot be computed; the message says why."""


def _factorial(x: Number) -> int:
    if isinstance(x, float):
        if not x.is_integer():
            raise CalculatorError("factorial needs a whole number")
        x = int(x)
    if x < 0:
        raise CalculatorError("factorial needs a number >= 0")
    if x > MAX_FACTORIAL:
        raise CalculatorError(f"factorial is limited to {MAX_FACTORIAL}")
    return math.factorial(x)


def _log(x: Number, base: Number | None = None) -> float:
    return math.log(x) if base is None else math.log(x, base)


FUNCTIONS: dict[str, Callable[..., Number]] = {
    "sqrt": math.sqrt,
    "cbrt": lambda x: math.copysign(abs(x) ** (1 / 3), x),
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "atan2": math.atan2,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "exp": math.exp,
    "log": _log,
    "ln": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "abs": abs,
    "round": round,
    "floor": math.floor,
    "ceil": math.ceil,
    "trunc": math.trunc,
    "factorial": _factorial,
    "degrees": math.degrees,
    "radians": math.radians,
    "hypot": math.hypot,
    "min": min,
    "max": max,
    "gcd": math.gcd,
}
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e, "tau": math.tau}

_BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_SYMBOLS: dict[type[ast.operator], str] = {
    ast.BitXor: "^",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.LShift: "<<",
    ast.RShift: ">>",
}


def _check_size(value: Number) -> Number:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise CalculatorError("the result is too large")
    if isinstance(value, float):
        if math.isnan(value):
            raise CalculatorError("the result is not a number")
        if math.isinf(value):
            raise CalculatorError("the result is too large")
    return value


def _power(base: Number, exponent: Number) -> Number:
    if abs(exponent) > MAX_EXPONENT:
        raise CalculatorError(f"exponents are limited to {MAX_EXPONENT}")
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0:
        if max(1, abs(base).bit_length() - 1) * exponent > MAX_INT_BITS and abs(base) > 1:
            raise CalculatorError("the result is too large")
    if base == 0 and exponent < 0:
        raise CalculatorError("division by zero")
    result = base**exponent
    if isinstance(result, complex):
        raise CalculatorError("the result is not a real number")
    return result


def _eval(node: ast.AST) -> Number:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant):
        value = node.value
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise CalculatorError(f"only numbers are allowed, not {value!r}")
        return _check_size(value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        operand = _eval(node.operand)
        return -operand if isinstance(node.op, ast.USub) else +operand
    if isinstance(node, ast.BinOp):
        op_type = type(node.op)
        if op_type not in _BINARY:
            symbol = _SYMBOLS.get(op_type, op_type.__name__)
            hint = " (use ** for powers)" if symbol == "^" else ""
            raise CalculatorError(f"the operator {symbol} is not allowed{hint}")
        left, right = _eval(node.left), _eval(node.right)
        if op_type is ast.Pow:
            return _check_size(_power(left, right))
        if op_type is ast.Mult and isinstance(left, int) and isinstance(right, int):
            if left.bit_length() + right.bit_length() > MAX_INT_BITS + 1:
                raise CalculatorError("the result is too large")
        try:
            return _check_size(_BINARY[op_type](left, right))
        except ZeroDivisionError:
            raise CalculatorError("division by zero") from None
    if isinstance(node, ast.Name):
        if node.id in CONSTANTS:
            return CONSTANTS[node.id]
        raise CalculatorError(f"unknown name {node.id!r}")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            what = node.func.id if isinstance(node.func, ast.Name) else "this call"
            raise CalculatorError(
                f"{what} is not an allowed function; allowed: {', '.join(sorted(FUNCTIONS))}"
            )
        if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
            raise CalculatorError("functions take plain positional arguments only")
        if len(node.args) > 8:
            raise CalculatorError("too many arguments")
        args = [_eval(a) for a in node.args]
        try:
            return _check_size(FUNCTIONS[node.func.id](*args))
        except CalculatorError:
            raise
        except (TypeError, ValueError) as e:
            raise CalculatorError(f"{node.func.id}: {e}") from None
    raise CalculatorError(f"{type(node).__name__} is not allowed in a calculation")


_WORDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), replacement)
    for pattern, replacement in (
        (r"\bsquare root of\s*([\d.]+)", r"sqrt(\1)"),
        (r"\bcube root of\s*([\d.]+)", r"cbrt(\1)"),
        (
            r"([\d.]+)\s*(?:%|percent)\s*tip\s*(?:on|for)\s*(?:an?\s*)?\$?([\d.]+)",
            r"\2 * \1 / 100",
        ),
        (r"([\d.]+)\s*(?:%|percent)\s*of\b", r"\1 / 100 *"),
        (r"([\d.]+)\s*(?:%(?!\s*[\d(.])|percent\b)", r"(\1 / 100)"),
        (r"\bto the power of\b", "**"),
        (r"\bsquared\b", "** 2"),
        (r"\bcubed\b", "** 3"),
        (r"\b(?:multiplied by|times)\b", "*"),
        (r"\b(?:divided by|over)\b", "/"),
        (r"\bplus\b", "+"),
        (r"\bminus\b", "-"),
        (r"(?<=\d),(?=\d{3}\b)", ""),
        (
            r"[$€£?]|\b(?:what is|what's|how much is|calculate|dollars?|euros?|pounds?|bill|"
            r"(?:tip|the result) is|an?|the)\b",
            "",
        ),
    )
)


_UNIT_SECONDS = {
    "second": 1,
    "minute": 60,
    "hour": 3600,
    "day": 86400,
    "week": 604800,
    "year": 31536000,
}
_UNIT = r"(second|minute|hour|day|week|year)s?"
_NUMBER_WORDS = {
    "a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
    "seven": 7, "eight": 8, "nine": 9, "ten": 10, "twelve": 12, "twenty": 20, "thirty": 30,
}  # fmt: skip
_AMOUNT = r"(\d+(?:\.\d+)?|" + "|".join(_NUMBER_WORDS) + ")"
_UNITS_IN = re.compile(rf"\b{_UNIT}\s+(?:are\s+)?(?:there\s+)?in\s+{_AMOUNT}\s+{_UNIT}\b", re.I)
_AMOUNT_IN = re.compile(rf"\b{_AMOUNT}\s+{_UNIT}\s+in\s+{_UNIT}\b", re.I)


def _amount(text: str) -> str:
    """A unit conversion's amount as digits ("two" → "2": how Whisper writes small numbers)."""
    return str(_NUMBER_WORDS.get(text.casefold(), text))


def _convert_units(text: str) -> str:
    """``"seconds in 3 hours"`` / ``"3 hours in seconds"`` → ``"(3 * 3600 / 1)"``."""
    text = re.sub(r"^\s*how many\s+", "", text, flags=re.I)
    text = _UNITS_IN.sub(
        lambda m: (
            f"({_amount(m[2])} * {_UNIT_SECONDS[m[3].lower()]} / {_UNIT_SECONDS[m[1].lower()]})"
        ),
        text,
    )
    return _AMOUNT_IN.sub(
        lambda m: (
            f"({_amount(m[1])} * {_UNIT_SECONDS[m[2].lower()]} / {_UNIT_SECONDS[m[3].lower()]})"
        ),
        text,
    )


def _from_words(text: str) -> str:
    """Arithmetic said in words (``"15 percent of 80"``, ``"square root of 169"``, ``"12
    times 9"``, ``"seconds in 3 hours"``) as symbols: the small model often passes the user's
    words as they are."""
    text = _convert_units(text)
    for pattern, replacement in _WORDS:
        text = pattern.sub(replacement, text)
    return text.strip()


def evaluate(expression: str) -> Number:
    """The value of ``expression``. Raises :class:`CalculatorError`."""
    text = expression.strip()
    if not text:
        raise CalculatorError("the expression is empty")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise CalculatorError(f"expressions are limited to {MAX_EXPRESSION_LENGTH} characters")
    text = text.replace("×", "*").replace("÷", "/").replace("−", "-")
    text = _from_words(text)
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalculatorError(f"{expression!r} is not a valid calculation") from None
    try:
        return _eval(tree)
    except OverflowError:
        raise CalculatorError("the result is too large") from None
    except RecursionError:
        raise CalculatorError("the expression is nested too deeply") from None


def format_number(value: Number) -> str:
    """A result as said aloud: integers as is, floats to 10 significant digits."""
    if isinstance(value, int):
        return str(value)
    if math.isinf(value):
        return "infinity" if value > 0 else "minus infinity"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.10g}"


_SPOKEN_OPERATORS = (
    ("**", " to the power of "),
    ("//", " divided by "),
    ("*", " times "),
    ("×", " times "),
    ("/", " divided by "),
    ("÷", " divided by "),
    ("+", " plus "),
    (" - ", " minus "),
    ("%", " modulo "),
)


def spoken_expression(expression: str) -> str:
    """``"12 * 7.5"`` → ``"12 times 7.5"``: an expression as it is said aloud (a tool result the
    model may repeat word for word)."""
    text = " ".join(expression.split())
    for symbol, words in _SPOKEN_OPERATORS:
        text = text.replace(symbol, words)
    return " ".join(text.split())


def arithmetic_in(text: str) -> str | None:
    """The part of ``text`` (a user's request) that is arithmetic the calculator can do as
    written (``"What's 15 percent of 80?"`` → ``"15 percent of 80"``), or None."""
    for part in (text, *re.split(r"\band\b|[,;]", text)):
        phrase = re.sub(r"^\s*(?:and\s+|so\s+|ok(?:ay)?,?\s+)?", "", part).strip(" ?.!")
        phrase = re.sub(
            r"^(?:what(?:'s| is)|how much is|calculate|compute)\s+", "", phrase, flags=re.I
        )
        if not re.search(r"\d", phrase) and not _UNITS_IN.search(phrase):
            continue
        try:
            evaluate(phrase)
        except CalculatorError:
            continue
        return phrase
    return None
