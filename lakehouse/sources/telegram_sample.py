"""A deterministic group chat in the exact Bot API ``Update`` format, for runs without a token.

Several people and a bot talk in a supergroup over a configurable number of days: text with
entities and emoji, photos, videos, voice notes, documents, stickers, dice, polls, locations,
contacts, animations, audio; replies, forwards and edits; a channel post now and then; and
updates that are not messages (reactions, callback queries, membership changes).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

SAMPLE_END_DATE = date(2026, 11, 16)
SAMPLE_DAYS = 7
FIRST_UPDATE_ID = 731_000_000

GROUP = {"id": -1001987654321, "title": "Lakehouse Movie Club", "type": "supergroup",
         "username": "lakehouse_movie_club"}
CHANNEL = {"id": -1001122334455, "title": "Lakehouse Announcements", "type": "channel"}
PEOPLE = [
    {"id": 111111111, "is_bot": False, "first_name": "Ana", "last_name": "Souza",
     "username": "ana_souza", "language_code": "pt-br"},
    {"id": 222222222, "is_bot": False, "first_name": "Bruno", "username": "brunocine",
     "language_code": "pt-br"},
    {"id": 333333333, "is_bot": False, "first_name": "Carla", "last_name": "Mendes",
     "language_code": "pt"},
    {"id": 444444444, "is_bot": False, "first_name": "David", "username": "dkim",
     "language_code": "en"},
    {"id": 555555555, "is_bot": False, "first_name": "Eva", "username": "eva_films",
     "language_code": "en"},
]
BOT = {"id": 999999999, "is_bot": True, "first_name": "Lakehouse Bot",
       "username": "lakehouse_ingest_bot"}

TEXTS = [
    "Bom dia, pessoal! ☀️",
    "Alguém viu o novo filme do Nolan? 🎬",
    "Vi ontem, achei incrível 🤯",
    "#cinema hoje à noite? Quem topa?",
    "O trailer saiu: https://example.com/trailer",
    "Concordo com @brunocine, a trilha sonora é perfeita 🎶",
    "Did anyone watch Dune Part Two? 🏜️",
    "The ending was *so* good",
    "I prefer the book, honestly 📚",
    "Vamos marcar a sessão de sábado?",
    "kkkkkk 😂😂",
    "Top 3 de ação de 2026: 1) ... 2) ... 3) ...",
    "Quick reminder: vote in the poll 👇",
    "Não curti muito o final, sinceramente",
    "Which cinema has the IMAX screen?",
    "Olha essa crítica: https://example.org/review?id=42 #review",
    "👍",
    "Alguém tem a lista de filmes de aventura do ano?",
]
STICKERS = [("CAACAgIAAxkBAAEBsticker1", "😀"), ("CAACAgIAAxkBAAEBsticker2", "🍿")]
DICE = ["🎲", "🎯", "🏀", "⚽", "🎳", "🎰"]
REACTIONS = ["👍", "❤", "🔥", "😁", "🤯"]


def _entities(text: str) -> list[dict[str, Any]]:
    """Entities with offsets in UTF-16 code units, as the Bot API counts them."""
    found = []
    for word in text.split():
        kind = None
        if word.startswith("#"):
            kind = "hashtag"
        elif word.startswith("@"):
            kind = "mention"
        elif word.startswith("https://"):
            kind = "url"
        if kind:
            start = text.index(word)
            offset = len(text[:start].encode("utf-16-le")) // 2
            length = len(word.encode("utf-16-le")) // 2
            found.append({"offset": offset, "length": length, "type": kind})
    return found


class SampleChat:
    """Generates the updates of ``days`` days ending on ``end_date``, the same every time."""

    def __init__(self, days: int = SAMPLE_DAYS, end_date: date = SAMPLE_END_DATE,
                 messages_per_day: int = 60, seed: int = 42):
        self.days = days
        self.end_date = end_date
        self.messages_per_day = messages_per_day
        self.seed = seed

    def updates(self) -> list[dict[str, Any]]:
        return list(self._generate())

    def _generate(self) -> Iterator[dict[str, Any]]:
        rng = random.Random(self.seed)
        update_id = FIRST_UPDATE_ID
        message_id = 1000
        channel_post_id = 50
        sent: list[dict[str, Any]] = []
        start = self.end_date - timedelta(days=self.days - 1)
        for day_index in range(self.days):
            day = start + timedelta(days=day_index)
            base = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            moments = sorted(rng.randint(7 * 3600, 23 * 3600 + 3599)
                             for _ in range(self.messages_per_day))
            for seq, second in enumerate(moments):
                message_id += 1
                sender = BOT if seq % 17 == 16 else rng.choice(PEOPLE)
                message = self._message(rng, message_id, base + second, sender, sent)
                sent.append(message)
                update_id += 1
                yield {"update_id": update_id, "message": message}
                roll = rng.random()
                if roll < 0.06 and "text" in message:
                    update_id += 1
                    edited = dict(message, text=message["text"] + " (editado)",
                                  edit_date=message["date"] + rng.randint(30, 900))
                    edited["entities"] = _entities(edited["text"]) or None
                    yield {"update_id": update_id,
                           "edited_message": {k: v for k, v in edited.items() if v is not None}}
                elif roll < 0.12:
                    update_id += 1
                    yield {"update_id": update_id, "message_reaction": {
                        "chat": GROUP, "message_id": message["message_id"],
                        "user": rng.choice(PEOPLE), "date": message["date"] + 60,
                        "old_reaction": [],
                        "new_reaction": [{"type": "emoji", "emoji": rng.choice(REACTIONS)}]}}
                elif roll < 0.14:
                    update_id += 1
                    yield {"update_id": update_id, "callback_query": {
                        "id": str(4_000_000_000 + update_id), "from": rng.choice(PEOPLE),
                        "message": message, "chat_instance": "-5550001112223334445",
                        "data": "vote:yes"}}
            channel_post_id += 1
            update_id += 1
            yield {"update_id": update_id, "channel_post": {
                "message_id": channel_post_id, "sender_chat": CHANNEL, "chat": CHANNEL,
                "date": base + 12 * 3600, "text": f"📢 Sessão da semana: dia {day:%d/%m}!",
                "author_signature": "Equipe"}}
            if day_index == 0:
                update_id += 1
                yield {"update_id": update_id, "chat_member": {
                    "chat": GROUP, "from": PEOPLE[0], "date": base + 7 * 3600,
                    "old_chat_member": {"user": PEOPLE[4], "status": "left"},
                    "new_chat_member": {"user": PEOPLE[4], "status": "member"}}}

    def _message(self, rng: random.Random, message_id: int, when: int,
                 sender: dict[str, Any], sent: list[dict[str, Any]]) -> dict[str, Any]:
        message: dict[str, Any] = {"message_id": message_id, "from": sender, "chat": GROUP,
                                   "date": when}
        kind = rng.choices(
            ["text", "photo", "video", "voice", "document", "sticker", "dice", "poll",
             "animation", "audio", "location", "contact"],
            weights=[60, 8, 3, 4, 3, 5, 2, 2, 3, 2, 1, 1])[0]
        file_id = f"AgAC{message_id:08d}"
        if kind == "text":
            message["text"] = rng.choice(TEXTS)
            entities = _entities(message["text"])
            if entities:
                message["entities"] = entities
        elif kind == "photo":
            message["photo"] = [
                {"file_id": file_id + "s", "file_unique_id": f"AQAD{message_id}s",
                 "file_size": 1200, "width": 90, "height": 67},
                {"file_id": file_id, "file_unique_id": f"AQAD{message_id}", "file_size": 84211,
                 "width": 1280, "height": 960}]
            if rng.random() < 0.5:
                message["caption"] = "Olha que cartaz lindo 😍"
        elif kind == "video":
            message["video"] = {"file_id": file_id, "file_unique_id": f"BAAD{message_id}",
                                "width": 1920, "height": 1080, "duration": 42,
                                "mime_type": "video/mp4", "file_size": 5_242_880}
            message["caption"] = "Trailer #cinema"
            message["caption_entities"] = [{"offset": 8, "length": 7, "type": "hashtag"}]
        elif kind == "voice":
            message["voice"] = {"file_id": file_id, "file_unique_id": f"AwAD{message_id}",
                                "duration": rng.randint(2, 60), "mime_type": "audio/ogg",
                                "file_size": 23_456}
        elif kind == "document":
            message["document"] = {"file_id": file_id, "file_unique_id": f"BQAD{message_id}",
                                   "file_name": "lista_filmes.pdf",
                                   "mime_type": "application/pdf", "file_size": 102_400}
        elif kind == "sticker":
            sticker_id, emoji = rng.choice(STICKERS)
            message["sticker"] = {"file_id": sticker_id, "file_unique_id": sticker_id[-8:],
                                  "type": "regular", "width": 512, "height": 512,
                                  "is_animated": False, "is_video": False, "emoji": emoji,
                                  "set_name": "MovieNight"}
        elif kind == "dice":
            message["dice"] = {"emoji": rng.choice(DICE), "value": rng.randint(1, 6)}
        elif kind == "poll":
            message["poll"] = {
                "id": str(5_000_000_000 + message_id), "question": "Filme de sábado?",
                "options": [{"text": "Ação", "voter_count": 0},
                            {"text": "Aventura", "voter_count": 0}],
                "total_voter_count": 0, "is_closed": False, "is_anonymous": True,
                "type": "regular", "allows_multiple_answers": False}
        elif kind == "animation":
            animation = {"file_id": file_id, "file_unique_id": f"CgAD{message_id}",
                         "width": 320, "height": 240, "duration": 3, "file_name": "lol.mp4",
                         "mime_type": "video/mp4"}
            # The Bot API sets document too for animations, for old clients.
            message["animation"] = animation
            message["document"] = {k: animation[k] for k in
                                   ("file_id", "file_unique_id", "file_name", "mime_type")}
        elif kind == "audio":
            message["audio"] = {"file_id": file_id, "file_unique_id": f"CQAD{message_id}",
                                "duration": 215, "performer": "Hans Zimmer", "title": "Time",
                                "mime_type": "audio/mpeg"}
        elif kind == "location":
            message["location"] = {"latitude": -23.5614, "longitude": -46.6559}
        else:
            message["contact"] = {"phone_number": "+5511999990000", "first_name": "Cine",
                                  "last_name": "Belas Artes"}
        if sent and rng.random() < 0.15:
            replied = rng.choice(sent[-10:])
            message["reply_to_message"] = {k: v for k, v in replied.items()
                                           if k != "reply_to_message"}
        elif rng.random() < 0.05:
            origin = rng.choice(PEOPLE)
            message["forward_origin"] = {"type": "user", "sender_user": origin,
                                         "date": when - 86_400}
            message["forward_from"] = origin
            message["forward_date"] = when - 86_400
        return message


class SampleTelegramBot:
    """Answers ``getUpdates`` like the Bot API, over a ``SampleChat``'s updates."""

    def __init__(self, chat: SampleChat | None = None):
        self._updates = (chat or SampleChat()).updates()

    def get_updates_raw(self, offset: int | None = None, limit: int = 100,
                        timeout: int = 0, allowed_updates: list[str] | None = None) -> bytes:
        pending = [u for u in self._updates if offset is None or u["update_id"] >= offset]
        body = {"ok": True, "result": pending[: max(1, min(limit, 100))]}
        return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
