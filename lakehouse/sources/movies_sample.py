"""Small, consistent movie datasets in each real wire format, for runs without network or keys.

One catalogue of titles drives every backend, so ids join across sources exactly as they do in
the real data: IMDB ``tconst`` values, MovieLens ``links.csv`` (IMDB id without ``tt``, TMDB id
sometimes empty) and TMDB (``imdb_id`` on a movie, ``external_ids`` on a series).

- IMDB: the seven ``.tsv.gz`` datasets (``\\N`` for null, quote characters as plain data).
- MovieLens: ``ml-latest-small.zip`` with ratings, movies, tags and links CSVs.
- TMDB: ``SampleTmdbApi`` answers ``GET path?params`` like api.themoviedb.org/3.
- CSV drop: ``movies.csv`` and ``series.csv`` in the movies-and-series challenge's
  format (pipe-delimited, one row per cast member).

Everything is deterministic (fixed seed), so the gold tables of a demo are the same every run.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import random
import zipfile
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

SAMPLE_SEED = 2026
# Unix time of the sample ratings window: 2015-01-01 .. 2024-12-31.
RATED_FROM, RATED_TO = 1_420_070_400, 1_735_603_200


@dataclass(frozen=True)
class Title:
    tconst: str
    title_type: str
    primary_title: str
    start_year: int
    runtime: int | None
    genres: tuple[str, ...]
    imdb_rating: float
    imdb_votes: int
    ml_id: int | None = None  # MovieLens movieId (None: not in MovieLens)
    ml_title: str | None = None  # MovieLens spelling, "Title, The (1999)"
    ml_genres: str | None = None  # MovieLens pipe list
    tmdb_id: int | None = None
    budget: int = 0
    revenue: int = 0
    original_title: str | None = None
    end_year: int | None = None
    tmdb_in_links: bool = True  # False: links.csv has an empty tmdbId, like the real file
    crew: tuple[str, ...] = field(default_factory=tuple)  # nconsts: directors first
    cast: tuple[str, ...] = field(default_factory=tuple)


PEOPLE: dict[str, tuple[str, int | None, int | None, str]] = {
    # nconst: (name, birth, death, professions)
    "nm0000209": ("Tim Robbins", 1958, None, "actor,director,producer"),
    "nm0000151": ("Morgan Freeman", 1937, None, "actor,producer,director"),
    "nm0001104": ("Frank Darabont", 1959, None, "director,writer,producer"),
    "nm0000206": ("Keanu Reeves", 1964, None, "actor,producer,director"),
    "nm0905154": ("Lana Wachowski", 1965, None, "writer,director,producer"),
    "nm0000148": ("Harrison Ford", 1942, None, "actor,producer"),
    "nm0000184": ("George Lucas", 1944, None, "producer,writer,director"),
    "nm0000229": ("Steven Spielberg", 1946, None, "producer,director,writer"),
    "nm0000150": ("Michael J. Fox", 1961, None, "actor,producer"),
    "nm0000709": ("Robert Zemeckis", 1952, None, "producer,writer,director"),
    "nm0000246": ("Bruce Willis", 1955, None, "actor,producer"),
    "nm0001532": ("John McTiernan", 1951, None, "director,producer"),
    "nm0000216": ("Arnold Schwarzenegger", 1947, None, "actor,producer,director"),
    "nm0000116": ("James Cameron", 1954, None, "writer,producer,director"),
    "nm0000704": ("Elijah Wood", 1981, None, "actor,producer"),
    "nm0001392": ("Peter Jackson", 1961, None, "producer,director,writer"),
    "nm0000136": ("Johnny Depp", 1963, None, "actor,producer"),
    "nm0893659": ("Gore Verbinski", 1964, None, "director,producer"),
    "nm0000138": ("Leonardo DiCaprio", 1974, None, "actor,producer"),
    "nm0634240": ("Christopher Nolan", 1970, None, "writer,producer,director"),
    "nm0000288": ("Christian Bale", 1974, None, "actor,producer"),
    "nm0000190": ("Matthew McConaughey", 1969, None, "actor,producer"),
    "nm0262635": ("Chris Evans", 1981, None, "actor,producer"),
    "nm0751648": ("Joe Russo", 1971, None, "producer,director,writer"),
    "nm0362766": ("Tom Hardy", 1977, None, "actor,producer"),
    "nm0004306": ("George Miller", 1945, None, "writer,producer,director"),
    "nm0000158": ("Tom Hanks", 1956, None, "actor,producer,writer"),
    "nm0005124": ("John Lasseter", 1957, None, "producer,writer,director"),
    "nm0000237": ("John Travolta", 1954, None, "actor,producer"),
    "nm0000233": ("Quentin Tarantino", 1963, None, "writer,director,actor"),
    "nm0000156": ("Jeff Goldblum", 1952, None, "actor,producer"),
    "nm0000128": ("Russell Crowe", 1964, None, "actor,producer"),
    "nm0000631": ("Ridley Scott", 1937, None, "producer,director"),
    "nm0941777": ("Sam Worthington", 1976, None, "actor,producer"),
    "nm0186505": ("Bryan Cranston", 1956, None, "actor,producer,director"),
    "nm0319213": ("Vince Gilligan", 1967, None, "producer,writer,director"),
    "nm0227759": ("Peter Dinklage", 1969, None, "actor,producer"),
    "nm0000100": ("Rowan Atkinson", 1955, None, "actor,writer"),
    "nm0000040": ("Stanley Kubrick", 1928, 1999, "director,writer,producer"),
    "nm0000020": ("Henry Fonda", 1905, 1982, "actor,producer"),
}

T = Title
TITLES: list[Title] = [
    T("tt0111161", "movie", "The Shawshank Redemption", 1994, 142, ("Drama",), 9.3, 3_000_000,
      318, "Shawshank Redemption, The (1994)", "Crime|Drama", 278, 25_000_000, 28_341_469,
      crew=("nm0001104",), cast=("nm0000209", "nm0000151")),
    T("tt0133093", "movie", "The Matrix", 1999, 136, ("Action", "Sci-Fi"), 8.7, 2_100_000,
      2571, "Matrix, The (1999)", "Action|Sci-Fi|Thriller", 603, 63_000_000, 463_517_383,
      crew=("nm0905154",), cast=("nm0000206",)),
    T("tt0076759", "movie", "Star Wars: Episode IV - A New Hope", 1977, 121,
      ("Action", "Adventure", "Fantasy"), 8.6, 1_450_000, 260,
      "Star Wars: Episode IV - A New Hope (1977)", "Action|Adventure|Sci-Fi", 11, 11_000_000,
      775_398_007, original_title="Star Wars", crew=("nm0000184",), cast=("nm0000148",)),
    T("tt0082971", "movie", "Raiders of the Lost Ark", 1981, 115, ("Action", "Adventure"), 8.4,
      1_050_000, 1198, "Raiders of the Lost Ark (Indiana Jones and the Raiders of the Lost Ark)"
      " (1981)", "Action|Adventure", 85, 18_000_000, 389_925_971,
      crew=("nm0000229",), cast=("nm0000148",)),
    T("tt0088763", "movie", "Back to the Future", 1985, 116, ("Adventure", "Comedy", "Sci-Fi"),
      8.5, 1_300_000, 1270, "Back to the Future (1985)", "Adventure|Comedy|Sci-Fi", 105,
      19_000_000, 381_109_762, crew=("nm0000709",), cast=("nm0000150",)),
    T("tt0095016", "movie", "Die Hard", 1988, 132, ("Action", "Thriller"), 8.2, 950_000, 1036,
      "Die Hard (1988)", "Action|Crime|Thriller", 562, 28_000_000, 140_767_956,
      crew=("nm0001532",), cast=("nm0000246",)),
    T("tt0103064", "movie", "Terminator 2: Judgment Day", 1991, 137, ("Action", "Sci-Fi"), 8.6,
      1_200_000, 589, "Terminator 2: Judgment Day (1991)", "Action|Sci-Fi", 280, 102_000_000,
      520_881_154, crew=("nm0000116",), cast=("nm0000216",)),
    T("tt0120737", "movie", "The Lord of the Rings: The Fellowship of the Ring", 2001, 178,
      ("Action", "Adventure", "Drama"), 8.9, 2_000_000, 4993,
      "Lord of the Rings: The Fellowship of the Ring, The (2001)", "Adventure|Fantasy", 120,
      93_000_000, 871_368_364, crew=("nm0001392",), cast=("nm0000704",)),
    T("tt0325980", "movie", "Pirates of the Caribbean: The Curse of the Black Pearl", 2003, 143,
      ("Action", "Adventure", "Fantasy"), 8.1, 1_200_000, 6539,
      "Pirates of the Caribbean: The Curse of the Black Pearl (2003)",
      "Action|Adventure|Comedy|Fantasy", 22, 140_000_000, 655_011_224,
      crew=("nm0893659",), cast=("nm0000136",)),
    T("tt1375666", "movie", "Inception", 2010, 148, ("Action", "Adventure", "Sci-Fi"), 8.8,
      2_600_000, 79132, "Inception (2010)", "Action|Crime|Drama|Mystery|Sci-Fi|Thriller|IMAX",
      27205, 160_000_000, 839_030_630, crew=("nm0634240",), cast=("nm0000138",)),
    T("tt0468569", "movie", "The Dark Knight", 2008, 152, ("Action", "Crime", "Drama"), 9.0,
      2_900_000, 58559, "Dark Knight, The (2008)", "Action|Crime|Drama|IMAX", 155, 185_000_000,
      1_004_558_444, crew=("nm0634240",), cast=("nm0000288",)),
    T("tt0816692", "movie", "Interstellar", 2014, 169, ("Adventure", "Drama", "Sci-Fi"), 8.7,
      2_200_000, 109487, "Interstellar (2014)", "Sci-Fi|IMAX", 157336, 165_000_000,
      701_729_206, crew=("nm0634240",), cast=("nm0000190",)),
    T("tt4154796", "movie", "Avengers: Endgame", 2019, 181, ("Action", "Adventure", "Drama"),
      8.4, 1_300_000, 204698, "Avengers: Endgame (2019)", "Action|Adventure|Sci-Fi", 299534,
      356_000_000, 2_799_439_100, crew=("nm0751648",), cast=("nm0262635",)),
    T("tt1392190", "movie", "Mad Max: Fury Road", 2015, 120, ("Action", "Adventure", "Sci-Fi"),
      8.1, 1_100_000, 122882, "Mad Max: Fury Road (2015)", "Action|Adventure|Sci-Fi|Thriller",
      76341, 150_000_000, 378_858_340, crew=("nm0004306",), cast=("nm0362766",)),
    T("tt0114709", "movie", "Toy Story", 1995, 81, ("Adventure", "Animation", "Comedy"), 8.3,
      1_050_000, 1, "Toy Story (1995)", "Adventure|Animation|Children|Comedy|Fantasy", 862,
      30_000_000, 394_436_586, crew=("nm0005124",), cast=("nm0000158",)),
    T("tt0109830", "movie", "Forrest Gump", 1994, 142, ("Drama", "Romance"), 8.8, 2_300_000,
      356, "Forrest Gump (1994)", "Comedy|Drama|Romance|War", 13, 55_000_000, 677_387_716,
      crew=("nm0000709",), cast=("nm0000158",)),
    T("tt0110912", "movie", "Pulp Fiction", 1994, 154, ("Crime", "Drama"), 8.9, 2_300_000, 296,
      "Pulp Fiction (1994)", "Comedy|Crime|Drama|Thriller", 680, 8_000_000, 213_928_762,
      crew=("nm0000233",), cast=("nm0000237",)),
    T("tt0107290", "movie", "Jurassic Park", 1993, 127, ("Action", "Adventure", "Sci-Fi"), 8.2,
      1_100_000, 480, "Jurassic Park (1993)", "Action|Adventure|Sci-Fi|Thriller", 329,
      63_000_000, 1_058_678_262, crew=("nm0000229",), cast=("nm0000156",)),
    T("tt0172495", "movie", "Gladiator", 2000, 155, ("Action", "Adventure", "Drama"), 8.5,
      1_700_000, 3578, "Gladiator (2000)", "Action|Adventure|Drama", 98, 103_000_000,
      465_516_248, crew=("nm0000631",), cast=("nm0000128",)),
    T("tt0499549", "movie", "Avatar", 2009, 162, ("Action", "Adventure", "Fantasy"), 7.9,
      1_400_000, 72998, "Avatar (2009)", "Action|Adventure|Sci-Fi|IMAX", 19995, 237_000_000,
      2_923_706_026, crew=("nm0000116",), cast=("nm0941777",)),
    T("tt0062622", "movie", "2001: A Space Odyssey", 1968, 149, ("Adventure", "Sci-Fi"), 8.3,
      720_000, 924, "2001: A Space Odyssey (1968)", "Adventure|Drama|Sci-Fi", 62, 12_000_000,
      146_000_000, crew=("nm0000040",), tmdb_in_links=False),
    T("tt0050083", "movie", "12 Angry Men", 1957, 96, ("Crime", "Drama"), 9.0, 900_000, 1203,
      "12 Angry Men (1957)", "Drama", 389, 350_000, 0, crew=(), cast=("nm0000020",)),
    # Quote characters are data in the IMDB dumps: this title must keep both of its quotes.
    T("tt0118694", "movie", 'The "Quoted" Heist', 1997, 98, ("Comedy", "Crime"), 6.1, 4_200,
      1500, '"Quoted" Heist, The (1997)', "(no genres listed)", 100402, 0, 0,
      cast=("nm0000100",)),
    T("tt10872600", "movie", "Spider-Man: No Way Home", 2021, 148,
      ("Action", "Adventure", "Fantasy"), 8.2, 900_000, 260514,
      "Spider-Man: No Way Home (2021)", "Action|Adventure|Fantasy|Sci-Fi", 634649, 200_000_000,
      1_921_847_111),
    T("tt0903747", "tvSeries", "Breaking Bad", 2008, 49, ("Crime", "Drama", "Thriller"), 9.5,
      2_200_000, tmdb_id=1396, end_year=2013, crew=("nm0319213",), cast=("nm0186505",)),
    T("tt0944947", "tvSeries", "Game of Thrones", 2011, 57, ("Action", "Adventure", "Drama"),
      9.2, 2_400_000, tmdb_id=1399, end_year=2019, cast=("nm0227759",)),
    # Only in IMDB: a short with unknown runtime and no genres (\N in every optional field).
    T("tt0000001", "short", "Carmencita", 1894, None, (), 5.7, 2_100),
]
EPISODES = [  # (tconst, parent, season, episode, title, year, runtime)
    ("tt0959621", "tt0903747", 1, 1, "Pilot", 2008, 58),
    ("tt1054724", "tt0903747", 1, 2, "Cat's in the Bag...", 2008, 48),
    ("tt1480055", "tt0944947", 1, 1, "Winter Is Coming", 2011, 62),
]
TMDB_GENRES = {"Action": 28, "Adventure": 12, "Animation": 16, "Comedy": 35, "Crime": 80,
               "Drama": 18, "Fantasy": 14, "Romance": 10749, "Science Fiction": 878,
               "Thriller": 53, "Mystery": 9648, "War": 10752, "Family": 10751}
TMDB_TV_GENRES = {"Action & Adventure": 10759, "Crime": 80, "Drama": 18,
                  "Sci-Fi & Fantasy": 10765}
KEYWORDS = ["hero", "space", "heist", "time travel", "dystopia", "artificial intelligence",
            "treasure", "prison", "dinosaur", "superhero", "based on novel", "sequel"]
ML_TAGS = ["sci-fi", "Sci-Fi ", "atmospheric", "classic", "twist ending", "dark hero",
           "visually appealing", "quotable", "Christopher Nolan", "time travel", "action",
           "Great soundtrack", "great  soundtrack"]


def by_tconst() -> dict[str, Title]:
    return {t.tconst: t for t in TITLES}


# -- IMDB ------------------------------------------------------------------------------------

IMDB_DATASETS = ("title.basics", "title.ratings", "title.akas", "title.crew",
                 "title.principals", "title.episode", "name.basics")
N = "\\N"


def _tsv(header: list[str], rows: list[list[Any]]) -> bytes:
    # Written by hand, never through csv: IMDB does not quote, and a `"` is just a character.
    lines = ["\t".join(header)]
    lines += ["\t".join(N if v is None else str(v) for v in row) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def imdb_tsv(dataset: str, version: int = 1) -> bytes:
    """One IMDB dataset as uncompressed TSV bytes. ``version`` 2 changes the ratings."""
    if dataset == "title.basics":
        rows = [[t.tconst, t.title_type, t.primary_title, t.original_title or t.primary_title,
                 0, t.start_year, t.end_year, t.runtime, ",".join(t.genres) or None]
                for t in TITLES]
        rows += [[e[0], "tvEpisode", e[4], e[4], 0, e[5], None, e[6], "Crime,Drama"]
                 for e in EPISODES]
        rows.append(rows[1])  # a duplicated line: silver keeps one
        return _tsv(["tconst", "titleType", "primaryTitle", "originalTitle", "isAdult",
                     "startYear", "endYear", "runtimeMinutes", "genres"], rows)
    if dataset == "title.ratings":
        bump = 0.1 if version > 1 else 0.0
        rows = [[t.tconst, f"{min(10.0, t.imdb_rating + bump):.1f}", t.imdb_votes + version - 1]
                for t in TITLES]
        rows.append(["tt9999999", "not-a-number", 12])  # a bad row: goes to quarantine
        return _tsv(["tconst", "averageRating", "numVotes"], rows)
    if dataset == "title.akas":
        rows = []
        for t in TITLES:
            rows.append([t.tconst, 1, t.original_title or t.primary_title, None, None,
                         "original", None, 1])
            rows.append([t.tconst, 2, t.primary_title, "US", "en", "imdbDisplay", None, 0])
            rows.append([t.tconst, 3, t.primary_title + " (BR)", "BR", "pt", None,
                         "literal title", 0])
        return _tsv(["titleId", "ordering", "title", "region", "language", "types",
                     "attributes", "isOriginalTitle"], rows)
    if dataset == "title.crew":
        rows = [[t.tconst, ",".join(t.crew[:1]) or None, ",".join(t.crew) or None]
                for t in TITLES]
        return _tsv(["tconst", "directors", "writers"], rows)
    if dataset == "title.principals":
        rows = []
        for t in TITLES:
            order = 0
            for n in t.cast:
                order += 1
                rows.append([t.tconst, order, n, "actor", None, f'["{PEOPLE[n][0]} role"]'])
            for n in t.crew[:1]:
                order += 1
                rows.append([t.tconst, order, n, "director", None, None])
        return _tsv(["tconst", "ordering", "nconst", "category", "job", "characters"], rows)
    if dataset == "title.episode":
        rows = [[e[0], e[1], e[2], e[3]] for e in EPISODES]
        return _tsv(["tconst", "parentTconst", "seasonNumber", "episodeNumber"], rows)
    if dataset == "name.basics":
        known: dict[str, list[str]] = {}
        for t in TITLES:
            for n in (*t.cast, *t.crew):
                known.setdefault(n, []).append(t.tconst)
        rows = [[n, name, birth, death, prof, ",".join(known.get(n, [])[:4]) or None]
                for n, (name, birth, death, prof) in PEOPLE.items()]
        return _tsv(["nconst", "primaryName", "birthYear", "deathYear", "primaryProfession",
                     "knownForTitles"], rows)
    raise KeyError(f"unknown IMDB dataset {dataset!r}")


def imdb_gz(dataset: str, version: int = 1) -> bytes:
    # mtime=0: the same content gives the same bytes, so an unchanged sample is a no-op.
    return gzip.compress(imdb_tsv(dataset, version), mtime=0)


# -- MovieLens -------------------------------------------------------------------------------

def movielens_members(version: int = 1) -> dict[str, bytes]:
    """The four CSVs of ml-latest-small, as the zip holds them (RFC 4180 quoting)."""
    rng = random.Random(SAMPLE_SEED + version)
    ml = [t for t in TITLES if t.ml_id is not None]

    def csv_bytes(header: list[str], rows: list[list[Any]]) -> bytes:
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)
        return buf.getvalue().encode()

    movies = [[t.ml_id, t.ml_title, t.ml_genres] for t in ml]
    links = [[t.ml_id, t.tconst[2:], t.tmdb_id if t.tmdb_in_links else ""] for t in ml]
    ratings: list[list[Any]] = []
    tags: list[list[Any]] = []
    for user in range(1, 41):
        for t in rng.sample(ml, k=rng.randint(6, 14)):
            # Centre each title's MovieLens rating on its IMDB rating (5-star scale).
            centre = t.imdb_rating / 2
            stars = min(5.0, max(0.5, round((centre + rng.uniform(-1.0, 0.8)) * 2) / 2))
            when = rng.randint(RATED_FROM, RATED_TO)
            ratings.append([user, t.ml_id, f"{stars:.1f}", when])
            if rng.random() < 0.25:
                tags.append([user, t.ml_id, rng.choice(ML_TAGS), when + 60])
    ratings.append([7, ml[0].ml_id, "9.5", RATED_FROM])  # out of range: quarantined
    ratings.sort(key=lambda r: (r[0], r[1]))
    return {
        "ml-latest-small/movies.csv": csv_bytes(["movieId", "title", "genres"], movies),
        "ml-latest-small/ratings.csv": csv_bytes(["userId", "movieId", "rating", "timestamp"],
                                                 ratings),
        "ml-latest-small/tags.csv": csv_bytes(["userId", "movieId", "tag", "timestamp"], tags),
        "ml-latest-small/links.csv": csv_bytes(["movieId", "imdbId", "tmdbId"], links),
        "ml-latest-small/README.txt": b"Sample of the MovieLens ml-latest-small layout.\n",
    }


def movielens_zip(version: int = 1) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in movielens_members(version).items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    return buf.getvalue()


# -- CSV drop ---------------------------------------------------------------------------------

def drop_csvs() -> dict[str, bytes]:
    """``movies.csv`` and ``series.csv`` as the movies-and-series challenge had them:
    pipe-delimited, one row per cast member."""
    movie_header = ["id", "tituloPincipal", "tituloOriginal", "anoLancamento", "tempoMinutos",
                    "genero", "notaMedia", "numeroVotos", "generoArtista", "personagem",
                    "nomeArtista", "anoNascimento", "anoFalecimento", "profissao",
                    "titulosMaisConhecidos"]
    movies, series = [], []
    for t in TITLES:
        for n in t.cast or ("",):
            name, birth, death, prof = PEOPLE.get(n, ("", None, None, ""))
            base = [t.tconst, t.primary_title, t.original_title or t.primary_title,
                    t.start_year]
            rest = [t.runtime if t.runtime is not None else N, ",".join(t.genres) or N,
                    t.imdb_rating, t.imdb_votes, "M" if name else N,
                    f"{name} role" if name else N, name or N, birth or N, death or N,
                    prof or N, N]
            if t.title_type == "movie":
                movies.append(base + rest)
            elif t.title_type == "tvSeries":
                series.append(base + [t.end_year] + rest)
    series_header = movie_header[:4] + ["anoTermino"] + movie_header[4:]
    return {"movies.csv": _psv(movie_header, movies), "series.csv": _psv(series_header, series)}


def _psv(header: list[str], rows: list[list[Any]]) -> bytes:
    return ("\n".join("|".join(str(v) for v in r) for r in [header, *rows]) + "\n").encode()


# -- TMDB ------------------------------------------------------------------------------------

def _tmdb_genres(t: Title) -> list[dict[str, Any]]:
    names = ["Science Fiction" if g == "Sci-Fi" else g for g in t.genres]
    if t.title_type == "tvSeries":
        tv = {"Action": "Action & Adventure", "Adventure": "Action & Adventure"}
        names = list(dict.fromkeys(tv.get(g, g) for g in names))
        return [{"id": TMDB_TV_GENRES[g], "name": g} for g in names if g in TMDB_TV_GENRES]
    return [{"id": TMDB_GENRES[g], "name": g} for g in names if g in TMDB_GENRES]


def _credits(t: Title) -> dict[str, Any]:
    person_id = {n: 1000 + i for i, n in enumerate(PEOPLE)}
    cast = [{"adult": False, "gender": 2, "id": person_id[n], "known_for_department": "Acting",
             "name": PEOPLE[n][0], "original_name": PEOPLE[n][0], "popularity": 10.5,
             "cast_id": i + 1, "character": f"{PEOPLE[n][0]} role",
             "credit_id": f"52fe{person_id[n]:04d}{i}", "order": i}
            for i, n in enumerate(t.cast)]
    crew = [{"adult": False, "gender": 2, "id": person_id[n], "known_for_department": "Directing",
             "name": PEOPLE[n][0], "original_name": PEOPLE[n][0], "popularity": 8.1,
             "credit_id": f"53fe{person_id[n]:04d}", "department": "Directing",
             "job": "Director"} for n in t.crew[:1]]
    return {"cast": cast, "crew": crew}


def tmdb_movie(t: Title) -> dict[str, Any]:
    rng = random.Random(t.tmdb_id)
    words = rng.sample(KEYWORDS, k=3)
    return {
        "adult": False, "backdrop_path": f"/{t.tmdb_id}b.jpg", "belongs_to_collection": None,
        "budget": t.budget, "genres": _tmdb_genres(t), "homepage": "", "id": t.tmdb_id,
        "imdb_id": t.tconst, "origin_country": ["US"], "original_language": "en",
        "original_title": t.original_title or t.primary_title,
        "overview": f"The story of {t.primary_title}.", "popularity": round(rng.uniform(5, 120), 3),
        "poster_path": f"/{t.tmdb_id}p.jpg", "production_companies": [],
        "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
        "release_date": f"{t.start_year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        "revenue": t.revenue, "runtime": t.runtime, "spoken_languages": [],
        "status": "Released", "tagline": "", "title": t.primary_title, "video": False,
        "vote_average": round(min(10.0, t.imdb_rating - 0.3 + rng.uniform(-0.3, 0.3)), 3),
        "vote_count": t.imdb_votes // 80,
        "credits": _credits(t),
        "keywords": {"keywords": [{"id": 100 + KEYWORDS.index(w), "name": w} for w in words]},
    }


def tmdb_tv(t: Title) -> dict[str, Any]:
    return {
        "adult": False, "backdrop_path": f"/{t.tmdb_id}b.jpg", "created_by": [],
        "episode_run_time": [t.runtime], "first_air_date": f"{t.start_year}-01-20",
        "genres": _tmdb_genres(t), "homepage": "", "id": t.tmdb_id, "in_production": False,
        "languages": ["en"], "last_air_date": f"{t.end_year}-05-19", "name": t.primary_title,
        "number_of_episodes": 62 if t.tmdb_id == 1396 else 73,
        "number_of_seasons": 5 if t.tmdb_id == 1396 else 8, "origin_country": ["US"],
        "original_language": "en", "original_name": t.primary_title,
        "overview": f"The story of {t.primary_title}.", "popularity": 300.5,
        "poster_path": f"/{t.tmdb_id}p.jpg", "status": "Ended", "type": "Scripted",
        "vote_average": round(t.imdb_rating - 0.5, 3), "vote_count": t.imdb_votes // 150,
        "credits": _credits(t),
        "keywords": {"results": [{"id": 101, "name": "drug"}]},
        "external_ids": {"imdb_id": t.tconst, "tvdb_id": 81189},
    }


def _summary(t: Title) -> dict[str, Any]:
    full = tmdb_tv(t) if t.title_type == "tvSeries" else tmdb_movie(t)
    keep = ("adult", "backdrop_path", "id", "original_language", "overview", "popularity",
            "poster_path", "vote_average", "vote_count", "title", "original_title",
            "release_date", "name", "original_name", "first_air_date")
    out = {k: full[k] for k in keep if k in full}
    out["genre_ids"] = [g["id"] for g in full["genres"]]
    out["media_type"] = "tv" if t.title_type == "tvSeries" else "movie"
    return out


# MovieLens links name this TMDB id, but TMDB answers 404 for it (removed entries happen).
TMDB_UNKNOWN_IDS = frozenset({100402})


class SampleTmdbApi:
    """Answers TMDB v3 GET calls from the catalogue: ``get(path, params) -> (status, body)``."""

    def __init__(self) -> None:
        self._movies = {t.tmdb_id: t for t in TITLES if t.tmdb_id is not None
                        and t.title_type == "movie" and t.tmdb_id not in TMDB_UNKNOWN_IDS}
        self._tv = {t.tmdb_id: t for t in TITLES if t.title_type == "tvSeries"}
        self._imdb = {t.tconst: t for t in TITLES if t.tmdb_id is not None}

    @staticmethod
    def _json(body: Any) -> tuple[int, bytes]:
        return 200, json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()

    @staticmethod
    def _not_found() -> tuple[int, bytes]:
        return 404, (b'{"success":false,"status_code":34,'
                     b'"status_message":"The resource you requested could not be found."}')

    def get(self, path: str, params: dict[str, Any] | None = None) -> tuple[int, bytes]:
        params = params or {}
        parts = [p for p in urlparse(path).path.split("/") if p]
        if parts[:1] == ["3"]:
            parts = parts[1:]
        if parts[:2] == ["genre", "movie"]:
            return self._json({"genres": [{"id": i, "name": n} for n, i in TMDB_GENRES.items()]})
        if parts[:2] == ["genre", "tv"]:
            return self._json({"genres": [{"id": i, "name": n}
                                          for n, i in TMDB_TV_GENRES.items()]})
        if parts[:1] == ["find"] and len(parts) == 2:
            t = self._imdb.get(parts[1])
            movie = [_summary(t)] if t and t.title_type == "movie" else []
            tv = [_summary(t)] if t and t.title_type == "tvSeries" else []
            return self._json({"movie_results": movie, "person_results": [], "tv_results": tv,
                               "tv_episode_results": [], "tv_season_results": []})
        if parts[:1] == ["movie"] and len(parts) == 2:
            t = self._movies.get(int(parts[1])) if parts[1].isdigit() else None
            return self._json(tmdb_movie(t)) if t else self._not_found()
        if parts[:1] == ["tv"] and len(parts) == 2:
            t = self._tv.get(int(parts[1])) if parts[1].isdigit() else None
            return self._json(tmdb_tv(t)) if t else self._not_found()
        if parts[:2] == ["discover", "movie"]:
            wanted = {int(g) for g in str(params.get("with_genres", "")).replace("|", ",")
                      .split(",") if g}
            found = [_summary(t) for t in self._movies.values()
                     if not wanted or wanted & {g["id"] for g in _tmdb_genres(t)}]
            found.sort(key=lambda s: -s["popularity"])
            page = int(params.get("page", 1))
            size = 20
            chunk = found[(page - 1) * size: page * size]
            pages = max(1, -(-len(found) // size))
            return self._json({"page": page, "results": chunk, "total_pages": pages,
                               "total_results": len(found)})
        return self._not_found()

    def get_url(self, url: str) -> tuple[int, bytes]:
        parsed = urlparse(url)
        params = {k: v[0] for k, v in parse_qs(parsed.query).items()}
        return self.get(parsed.path, params)


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
