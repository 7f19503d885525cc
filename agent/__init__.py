"""heron.agent"""
