"""The Responses API's state: stored responses, and the background responses running here."""
