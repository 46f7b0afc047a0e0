"""Inference: the Engine interface, the ChatModel facade and the chat loop."""
