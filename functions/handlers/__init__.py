"""Thin Lambda handlers: functions.handlers.<step>.handler."""
