"""Deterministic tweets in the exact Twitter API v2 formats, for runs without a bearer token.

A week of Portuguese and English tweets (and a few in other languages) about films: originals,
retweets (``RT @user: ...`` truncated with ``…`` as v2 sends them), replies and quotes, with
hashtags, mentions, URLs (``t.co`` links with expanded URLs), emoji, places for some tweets,
long posts (``note_tweet``), edited posts (a new id per version, ``edit_history_tweet_ids``),
the posting client (``source``), ``context_annotations``, photos and videos
(``attachments.media_keys``) and the ``includes.users`` / ``places`` / ``tweets`` / ``media``
expansions (referenced tweets and their authors, mentioned users). The same seed always gives the same tweets,
ids and timestamps. Tweet ids are snowflakes, so they grow with ``created_at`` as real ones do.

``SampleTwitterApi`` answers recent search pages (newest first, ``since_id``, ``next_token``) and
yields sample-stream lines with keep-alive newlines, the two shapes the real client returns.
"""

from __future__ import annotations

import base64
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

SAMPLE_END_DATE = date(2026, 11, 16)
SAMPLE_DAYS = 7
TWITTER_EPOCH_MS = 1288834974657

USERS = [
    ("1100000000000000001", "Ana Souza", "anasouza", "São Paulo, Brasil"),
    ("1100000000000000002", "Bruno Cine", "brunocine", "Rio de Janeiro"),
    ("1100000000000000003", "Carla Mendes", "carlamendes", None),
    ("1100000000000000004", "David Kim", "dkim_films", "Seattle, WA"),
    ("1100000000000000005", "Eva Reviews", "eva_reviews", "London"),
    ("1100000000000000006", "Cinema em Cena", "cinemaemcena", "Brasil"),
    ("1100000000000000007", "Box Office Daily", "boxofficedaily", "Los Angeles, CA"),
    ("1100000000000000008", "Lucía Gómez", "luciagomez", "Madrid"),
    ("1100000000000000009", "Pedro Alves", "pedroalves", "Porto Alegre"),
    ("1100000000000000010", "Grace Lee", "gracelee", None),
]
PLACES = [
    {"id": "68e019afec7d0ba5", "full_name": "São Paulo, Brasil", "name": "São Paulo",
     "country": "Brasil", "country_code": "BR", "place_type": "city",
     "geo": {"type": "Feature", "bbox": [-46.83, -24.01, -46.36, -23.35], "properties": {}}},
    {"id": "97bcdfca1a2dca59", "full_name": "Rio de Janeiro, Brasil", "name": "Rio de Janeiro",
     "country": "Brasil", "country_code": "BR", "place_type": "city",
     "geo": {"type": "Feature", "bbox": [-43.79, -23.08, -43.09, -22.74], "properties": {}}},
    {"id": "300bcc6e23a88361", "full_name": "Seattle, WA", "name": "Seattle",
     "country": "United States", "country_code": "US", "place_type": "city",
     "geo": {"type": "Feature", "bbox": [-122.43, 47.49, -122.22, 47.73], "properties": {}}},
    {"id": "457b4814b4240d87", "full_name": "London, England", "name": "London",
     "country": "United Kingdom", "country_code": "GB", "place_type": "city",
     "geo": {"type": "Feature", "bbox": [-0.51, 51.28, 0.33, 51.69], "properties": {}}},
    {"id": "206b0d4a5d5e6e4b", "full_name": "Madrid, España", "name": "Madrid",
     "country": "España", "country_code": "ES", "place_type": "city",
     "geo": {"type": "Feature", "bbox": [-3.89, 40.31, -3.52, 40.64], "properties": {}}},
]
USER_PLACE = {"anasouza": 0, "brunocine": 1, "dkim_films": 2, "eva_reviews": 3, "luciagomez": 4}
CLIENTS = ["Twitter for Android", "Twitter for iPhone", "Twitter Web App"]
VERIFIED_TYPES = {5: "business", 6: "business", 4: "blue"}
# Twitter's context-annotation domain 86 is "Movie"; the entity ids are made up per film.
MOVIE_DOMAIN = {"id": "86", "name": "Movie", "description": "A film like 'The Princess Bride'"}
# The rules the sample stream pretends to be filtered by (``matching_rules``).
SAMPLE_RULES = [{"id": "1866916266197536768", "value": "cinema OR filme OR movie OR film",
                 "tag": "films"},
                {"id": "1866916266197536769", "value": "(cinema OR filme) lang:pt",
                 "tag": "films in portuguese"}]
EDIT_SUFFIX = {"pt": " (editado)", "en": " (edited)", "es": " (editado)", "ja": "（編集済み）"}

TEXTS = {
    "pt": [
        "Que filme incrível! Amei cada minuto 😍 #cinema",
        "Achei o final horrível, uma decepção total 😡",
        "Alguém vai assistir {film} hoje? #filmes",
        "A trilha sonora de {film} é maravilhosa, perfeita demais 🎶",
        "Não gostei do roteiro, muito fraco e chato",
        "O trailer de {film} saiu: {url}",
        "Sessão de {film} às 20h no centro",
        "Melhor filme do ano, sem dúvida! 🏆 #oscar",
        "Que tédio, dormi no meio do filme 😴",
        "Vou ver {film} no sábado com a galera",
        "Péssimo atendimento no cinema, nunca mais volto",
        "Fotografia linda e atuações excelentes em {film} #cinema",
    ],
    "en": [
        "What an amazing movie! Loved every minute 😍 #movies",
        "The ending was terrible, such a disappointment 😡",
        "Is anyone watching {film} tonight? #cinema",
        "The soundtrack of {film} is beautiful and perfect 🎶",
        "I did not like the script, very weak and boring",
        "The {film} trailer is out: {url}",
        "{film} screening at 8pm downtown",
        "Best film of the year, no doubt! 🏆 #oscars",
        "So bored, I fell asleep halfway through 😴",
        "Going to see {film} on Saturday with friends",
        "Awful service at the theater, never going back",
        "Gorgeous cinematography and great acting in {film} #movies",
    ],
    "es": ["¡Qué película tan buena! #cine", "No me gustó nada el final de {film}"],
    "ja": ["{film}を観ました！最高でした #映画"],
}
FILMS = ["Dune", "Oppenheimer", "Cidade de Deus", "Aftersun", "Bacurau", "Past Lives"]
LANG_WEIGHTS = {"pt": 48, "en": 44, "es": 5, "ja": 3}
USER_LANG = {"pt": [0, 1, 2, 5, 8], "en": [3, 4, 6, 9], "es": [7], "ja": [9]}


def snowflake(moment_ms: int, sequence: int) -> int:
    """A tweet id for a moment, as Twitter builds them (timestamp in the high bits)."""
    return ((moment_ms - TWITTER_EPOCH_MS) << 22) | (sequence & 0x3FFFFF)


def iso_ms(moment_ms: int) -> str:
    return datetime.fromtimestamp(moment_ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + \
        f"{moment_ms % 1000:03d}Z"


def user_object(index: int) -> dict[str, Any]:
    uid, name, username, location = USERS[index]
    user: dict[str, Any] = {
        "id": uid, "name": name, "username": username,
        "created_at": f"20{12 + index:02d}-0{1 + index % 9}-15T12:00:00.000Z",
        "verified": index in (5, 6),
        "public_metrics": {"followers_count": 150 * (index + 1) ** 2,
                           "following_count": 80 + 13 * index,
                           "tweet_count": 2000 + 311 * index, "listed_count": index * 3},
        "description": f"{name} fala de cinema / talks about film",
        "protected": index == 2,
        "verified_type": VERIFIED_TYPES.get(index, "none"),
    }
    if index % 3 == 0:
        user["url"] = f"https://t.co/u{username[:8]}"
    if location:
        user["location"] = location
    return user


def _entities(text: str, urls: dict[str, str]) -> dict[str, Any]:
    """hashtags/mentions/urls with start/end in code points, as v2 counts them."""
    entities: dict[str, list[dict[str, Any]]] = {}
    position = 0
    for word in text.split(" "):
        start = text.index(word, position)
        end = start + len(word)
        position = end
        token = word.rstrip(":,.!?")
        end = start + len(token)
        if token.startswith("#") and len(token) > 1:
            entities.setdefault("hashtags", []).append(
                {"start": start, "end": end, "tag": token[1:]})
        elif token.startswith("@") and len(token) > 1:
            uname = token[1:]
            uid = next((u[0] for u in USERS if u[2] == uname), "1100000000000000099")
            entities.setdefault("mentions", []).append(
                {"start": start, "end": end, "username": uname, "id": uid})
        elif token.startswith("https://t.co/"):
            expanded = urls.get(token, "https://example.com/")
            entities.setdefault("urls", []).append(
                {"start": start, "end": end, "url": token, "expanded_url": expanded,
                 "display_url": expanded.removeprefix("https://")[:24]})
    return entities


@dataclass(frozen=True)
class SampleTweet:
    tweet: dict[str, Any]
    user: dict[str, Any]
    place: dict[str, Any] | None
    referenced: tuple[dict[str, Any], ...] = ()  # the tweets it retweets, quotes or answers
    media: tuple[dict[str, Any], ...] = ()

    @property
    def id(self) -> int:
        return int(self.tweet["id"])


class SampleTweets:
    """``per_day`` tweets a day for ``days`` days ending on ``end_date``; the same every time."""

    def __init__(self, days: int = SAMPLE_DAYS, end_date: date = SAMPLE_END_DATE,
                 per_day: int = 120, seed: int = 3, retweet_share: float = 0.35):
        self.days = days
        self.end_date = end_date
        self.per_day = per_day
        self.seed = seed
        self.retweet_share = retweet_share

    def generate(self) -> Iterator[SampleTweet]:
        rng = random.Random(self.seed)
        # The newer fields draw from their own generator: the tweets above stay the same.
        self._extra = random.Random(self.seed * 7919)
        users = [user_object(i) for i in range(len(USERS))]
        self._old = self._old_posts(users)
        originals: list[dict[str, Any]] = []
        start = self.end_date - timedelta(days=self.days - 1)
        for day_index in range(self.days):
            day = start + timedelta(days=day_index)
            base_ms = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1000
            moments = sorted(rng.randint(0, 86_399_999) for _ in range(self.per_day))
            for seq, offset in enumerate(moments):
                moment = base_ms + offset
                item = self._tweet(rng, users, originals, moment, seq)
                yield item
                edit = self._maybe_edit(item, moment, seq)
                if edit is not None:
                    yield edit

    def _maybe_edit(self, item: SampleTweet, moment: int, seq: int) -> SampleTweet | None:
        """Some originals are edited 10 minutes later: the edit is a new tweet (a new id) whose
        ``edit_history_tweet_ids`` lists both; the original, read after the edit, too."""
        tweet = item.tweet
        if ("referenced_tweets" in tweet or "note_tweet" in tweet
                or self._extra.random() >= 0.03):
            return None
        edit_ms = moment + 600_000
        edited = {**tweet, "id": str(snowflake(edit_ms, seq + 2_000_000)),
                  "created_at": iso_ms(edit_ms),
                  "text": tweet["text"] + EDIT_SUFFIX.get(tweet["lang"], " (edited)"),
                  "public_metrics": dict(tweet["public_metrics"])}
        history = [tweet["id"], edited["id"]]
        tweet["edit_history_tweet_ids"] = edited["edit_history_tweet_ids"] = history
        return SampleTweet(edited, item.user, item.place, item.referenced, item.media)

    def _tweet(self, rng: random.Random, users: list[dict[str, Any]],
               originals: list[dict[str, Any]], moment: int, seq: int) -> SampleTweet:
        tid = str(snowflake(moment, seq))
        roll = rng.random()
        if originals and roll < self.retweet_share:
            source = rng.choice(originals[-200:])
            if self._extra.random() < 0.08:
                # Some retweets are of older posts, outside the week: those are seen only
                # through includes.tweets.
                source = self._old[int(tid[-2:]) % 2]
            author_index = rng.randrange(len(USERS))
            src_user = next(u for u in users if u["id"] == source["author_id"])
            text = f"RT @{src_user['username']}: {source['text']}"
            if len(text) > 140:
                text = text[:139] + "…"
            tweet = self._base(tid, text, moment, users[author_index], source["lang"], {})
            tweet["referenced_tweets"] = [{"type": "retweeted", "id": source["id"]}]
            tweet["conversation_id"] = source["conversation_id"]
            tweet["public_metrics"]["retweet_count"] = source["public_metrics"]["retweet_count"]
            return SampleTweet(tweet, users[author_index], None, (source,))
        lang = rng.choices(list(LANG_WEIGHTS), weights=list(LANG_WEIGHTS.values()))[0]
        author_index = rng.choice(USER_LANG[lang])
        url_token = f"https://t.co/{base64.b32encode(tid[-6:].encode()).decode()[:10]}"
        urls = {url_token: f"https://example.com/films/{tid[-5:]}"}
        text = rng.choice(TEXTS[lang]).format(film=rng.choice(FILMS), url=url_token)
        kind = rng.random()
        reply_to = quote_of = None
        if originals and kind < 0.15:
            reply_to = rng.choice(originals[-100:])
            target = next(u for u in users if u["id"] == reply_to["author_id"])
            text = f"@{target['username']} {text}"
        elif originals and kind < 0.22:
            quote_of = rng.choice(originals[-100:])
            quote_url = f"https://t.co/q{tid[-9:]}"
            urls[quote_url] = f"https://twitter.com/i/web/status/{quote_of['id']}"
            text = f"{text} {quote_url}"
        if rng.random() < 0.2:
            mention = rng.choice(USERS)[2]
            text = f"{text} cc @{mention}"
        tweet = self._base(tid, text, moment, users[author_index], lang, urls)
        if reply_to is not None:
            tweet["referenced_tweets"] = [{"type": "replied_to", "id": reply_to["id"]}]
            tweet["in_reply_to_user_id"] = reply_to["author_id"]
            tweet["conversation_id"] = reply_to["conversation_id"]
        if quote_of is not None:
            tweet["referenced_tweets"] = [{"type": "quoted", "id": quote_of["id"]}]
        film = next((f for f in FILMS if f in text), None)
        if film is not None:
            tweet["context_annotations"] = [{"domain": MOVIE_DOMAIN, "entity": {
                "id": f"15{FILMS.index(film):02d}000000000000001", "name": film}}]
        if lang in ("pt", "en") and reply_to is None and self._extra.random() < 0.05:
            self._make_long(tweet, lang)
        media = self._media(tweet)
        place = None
        username = users[author_index]["username"]
        if username in USER_PLACE and rng.random() < 0.4:
            place = PLACES[USER_PLACE[username]]
            tweet["geo"] = {"place_id": place["id"]}
        originals.append(tweet)
        tweet["public_metrics"]["like_count"] = rng.randint(0, 400)
        tweet["public_metrics"]["retweet_count"] = rng.randint(0, 50)
        referenced = tuple(t for t in (reply_to, quote_of) if t is not None)
        return SampleTweet(tweet, users[author_index], place, referenced, media)

    def _old_posts(self, users: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Two popular posts from 40 days before the week (never in search or stream)."""
        start = self.end_date - timedelta(days=self.days + 40)
        base = int(datetime(start.year, start.month, start.day, 15, tzinfo=UTC).timestamp())
        old = []
        for n, (lang, text) in enumerate((("en", TEXTS["en"][7]), ("pt", TEXTS["pt"][0]))):
            moment = (base + n * 3600) * 1000
            tweet = self._base(str(snowflake(moment, n)), text, moment, users[6 - n], lang, {})
            tweet["public_metrics"].update(retweet_count=900 + n, like_count=4000 + n)
            old.append(tweet)
        return old

    def _make_long(self, tweet: dict[str, Any], lang: str) -> None:
        """A post over 280 characters: the whole of it in ``note_tweet``, ``text`` cut."""
        more = " ".join(self._extra.sample(TEXTS[lang], 7)).replace("{film}", FILMS[0])
        whole = " ".join(f"{tweet['text']} {more}".replace("{url}", "").split())
        if len(whole) <= 280:
            return
        tweet["note_tweet"] = {"text": whole}
        entities = _entities(whole, {})
        if entities:
            tweet["note_tweet"]["entities"] = entities
        tweet["text"] = whole[:279] + "…"
        short = _entities(tweet["text"], {})
        if short:
            tweet["entities"] = short
        else:
            tweet.pop("entities", None)

    def _media(self, tweet: dict[str, Any]) -> tuple[dict[str, Any], ...]:
        """A photo (``3_``) or a video (``7_``) on some originals, as ``includes.media`` has them."""
        roll = self._extra.random()
        if roll >= 0.12:
            return ()
        tid = tweet["id"]
        if roll < 0.09:
            media: dict[str, Any] = {
                "media_key": f"3_{tid}", "type": "photo", "width": 1200, "height": 675,
                "url": f"https://pbs.twimg.com/media/F{tid[-10:]}.jpg",
                "alt_text": "Cartaz do filme / film poster"}
        else:
            media = {"media_key": f"7_{tid}", "type": "video", "width": 1280, "height": 720,
                     "duration_ms": 30_000 + int(tid[-4:]),
                     "preview_image_url": f"https://pbs.twimg.com/ext_tw_video_thumb/{tid}/pu/img/p.jpg",
                     "public_metrics": {"view_count": int(tid[-3:]) * 17}}
        tweet["attachments"] = {"media_keys": [media["media_key"]]}
        return (media,)

    @staticmethod
    def _base(tid: str, text: str, moment: int, user: dict[str, Any], lang: str,
              urls: dict[str, str]) -> dict[str, Any]:
        tweet: dict[str, Any] = {
            "id": tid, "text": text, "created_at": iso_ms(moment), "author_id": user["id"],
            "conversation_id": tid, "lang": lang,
            "source": CLIENTS[int(tid[-3:]) % len(CLIENTS)],
            "edit_history_tweet_ids": [tid],
            "public_metrics": {"retweet_count": 0, "reply_count": 0, "like_count": 0,
                               "quote_count": 0, "bookmark_count": 0, "impression_count": 0},
        }
        entities = _entities(text, urls)
        if entities:
            tweet["entities"] = entities
        return tweet


def envelope(items: list[SampleTweet], meta: dict[str, Any] | None = None) -> dict[str, Any]:
    """A v2 answer: ``data`` plus the expansions, deduplicated: ``includes.users`` (authors,
    referenced tweets' authors, mentioned users), ``places``, ``tweets`` (referenced),
    ``media``."""
    by_id = {u[0]: user_object(n) for n, u in enumerate(USERS)}
    by_handle = {u[2]: u[0] for u in USERS}
    users = {i.user["id"]: i.user for i in items}
    referenced = {r["id"]: r for i in items for r in i.referenced}
    for tweet in [i.tweet for i in items] + list(referenced.values()):
        if tweet["author_id"] in by_id:
            users.setdefault(tweet["author_id"], by_id[tweet["author_id"]])
        for mention in tweet.get("entities", {}).get("mentions", []):
            uid = by_handle.get(mention["username"])
            if uid:
                users.setdefault(uid, by_id[uid])
    places = {i.place["id"]: i.place for i in items if i.place}
    media = {m["media_key"]: m for i in items for m in i.media}
    body: dict[str, Any] = {"data": [i.tweet for i in items]}
    includes: dict[str, Any] = {"users": list(users.values())}
    if places:
        includes["places"] = list(places.values())
    if referenced:
        includes["tweets"] = list(referenced.values())
    if media:
        includes["media"] = list(media.values())
    body["includes"] = includes
    if meta is not None:
        body["meta"] = meta
    return body


class SampleTwitterApi:
    """Answers like the real API from ``SampleTweets``: search pages and stream lines."""

    def __init__(self, tweets: SampleTweets | None = None):
        self._source = tweets or SampleTweets()
        self._tweets = sorted(self._source.generate(), key=lambda t: t.id)

    def search_recent_page(self, query: str, since_id: str | None, next_token: str | None,
                           max_results: int = 100, start_time: str | None = None
                           ) -> tuple[bytes, dict[str, str]]:
        """One page of recent search, newest first, as (body bytes, response headers)."""
        newer = [t for t in reversed(self._tweets) if (since_id is None or t.id > int(since_id))
                 and (start_time is None or t.tweet["created_at"] >= start_time[:19])]
        start = int(base64.urlsafe_b64decode(next_token).decode()) if next_token else 0
        page = newer[start:start + max_results]
        headers = {"x-rate-limit-limit": "450", "x-rate-limit-remaining": "449",
                   "x-rate-limit-reset": str(int(datetime.now(UTC).timestamp()) + 900)}
        if not page:
            return json.dumps({"meta": {"result_count": 0}}).encode(), headers
        meta: dict[str, Any] = {"newest_id": page[0].tweet["id"],
                                "oldest_id": page[-1].tweet["id"], "result_count": len(page)}
        if start + max_results < len(newer):
            meta["next_token"] = base64.urlsafe_b64encode(
                str(start + max_results).encode()).decode()
        body = json.dumps(envelope(page, meta), ensure_ascii=False, separators=(",", ":"))
        return body.encode(), headers

    def stream_lines(self, limit: int | None = None, every: int = 0,
                     last_days: int = 2, filtered: bool = True) -> Iterator[bytes]:
        """Stream lines (one tweet each) of the last ``last_days`` sample days.

        An empty line (a keep-alive) follows every ``every`` tweets when ``every`` > 0. With
        ``filtered``, lines carry the ``matching_rules`` of ``SAMPLE_RULES`` as the filtered
        stream's do (every tweet matches "films"; Portuguese ones "films in portuguese" too).
        """
        cutoff = self._source.end_date - timedelta(days=last_days - 1)
        chosen = [t for t in self._tweets if t.tweet["created_at"][:10] >= cutoff.isoformat()]
        for n, item in enumerate(chosen[:limit] if limit else chosen, start=1):
            line = envelope([item]) | {"data": item.tweet}
            if filtered:
                rules = SAMPLE_RULES[:2] if item.tweet["lang"] == "pt" else SAMPLE_RULES[:1]
                line["matching_rules"] = [{"id": r["id"], "tag": r["tag"]} for r in rules]
            yield json.dumps(line, ensure_ascii=False, separators=(",", ":")).encode()
            if every and n % every == 0:
                yield b""
