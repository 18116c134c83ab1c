"""Drawing and state helpers shared by the pages; every number they show comes from lora_core."""
