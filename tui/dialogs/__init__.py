"""Typed modal dialogs (ModalScreen[T])."""
