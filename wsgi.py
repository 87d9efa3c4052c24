from globalupdates import create_app

app = create_app()
