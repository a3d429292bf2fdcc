"""The example's URLs; Postal's webhook goes to `postal_sdk.django.webhook_view`."""

from django.urls import path

from examples.django_app import views
from postal_sdk.django import webhook_view

urlpatterns = [
    path("messages", views.send_welcome),
    path("messages/async", views.send_welcome_async),
    path("events", views.list_events),
    path("webhooks/postal", webhook_view),
]
