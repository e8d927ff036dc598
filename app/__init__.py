"""The web app: a Dash UI and a JSON API that classify comments with the project's trained runs."""
