"""The URLs of the Django tests: Postal's webhook view."""

from django.urls import path

from postal_sdk.django import webhook_view

urlpatterns = [path("webhooks/postal", webhook_view)]
