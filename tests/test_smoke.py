def test_front_page_lists_articles(client):
    response = client.get("/")
    assert response.status_code == 200
    assert b"Harrowmere" in response.data
