"""Movies: IMDB, MovieLens, TMDB and CSV drops into silver Delta (gold lives in dbt)."""
