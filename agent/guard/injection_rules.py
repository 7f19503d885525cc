"""The prompt-injection rules: instructions aimed at an assistant, in several languages.

No maintained library detects prompt injection without a neural model (the ones
on PyPI run transformer classifiers on PyTorch), so heron uses rules. Each rule is
a regular expression over *normalised* text (see :mod:`.injection`): lower case,
ASCII-folded, punctuation turned into single spaces, so ``words like these`` are
separated by exactly one space. Rules marked ``squash`` are also tried on the text
with every non-letter removed, which catches letter-spaced and run-together
obfuscations (``i g n o r e``, ``ignorepreviousinstructions``); only distinctive
phrases are squashed, since short ones would match inside ordinary words.

Every rule was written against two collections in ``bench/data``: ordinary scene
text (signs, labels, manuals, screens), which must not match, and injection
phrasings, which must. Generic words that ordinary text uses as well ("clear all
messages", "forget your limits", "upload your photos to") are only counted with a
second signal that places them at an assistant (previous/system instructions,
"the user's data", an e-mail or URL target).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    name: str
    category: str
    pattern: re.Pattern[str]
    view: str = "words"
    """words: the normalised words; raw: lower case with punctuation kept; native: the
    original script (for non-Latin languages)."""
    squash: bool = False
    negatable: bool = True
    """Not a finding when just after a negation ("never share your password with")."""


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


# -- English building blocks (over the "words" view) ------------------------------

OVERRIDE_VERB = (
    r"(?:ignore|ignoring|disregard|disregarding|forget|forgetting|override|overrule|bypass"
    r"|circumvent|neglect|dismiss|abandon|discard|set aside|throw out|throw away|scrap"
    r"|pay no (?:attention|heed|mind) to|take no notice of|do not (?:follow|obey|listen to|heed)"
    r"|don t (?:follow|obey|listen to|heed)|dont (?:follow|obey|listen to)"
    r"|stop (?:following|obeying|listening to)|no longer (?:follow|obey)|unlearn)"
)
WEAK_VERB = (
    r"(?:skip|skipping|cancel|void|nullify|scrap|drop|delete|erase|clear|remove|reset|replace"
    r"|overwrite|suspend|turn off|switch off|disable|deactivate|lift|remove|break|violate)"
)
_DET_WORDS = (
    r"all|any|every|each|the|your|my|of|these|those|that|this|its|their|our|whole|entire"
    r"|prior|previous|previously given|above|earlier|preceding|former|original|initial|old"
    r"|existing|current|given|default|system|developer|safety|hidden|first|foregoing"
    r"|aforementioned|mentioned|said|other|internal|built in|preset|programmed|core"
)
DET = rf"(?:(?:{_DET_WORDS}) )*"
POSITIONAL = (
    r"(?:prior|previous|previously given|above|earlier|preceding|former|original|initial"
    r"|system|developer|safety|default|existing|foregoing|aforementioned|built in|core"
    r"|programmed|internal|hidden|all (?:of )?(?:your|the|my))"
)
OBJ_STRONG = (
    r"(?:instructions?|instruction set|prompts?|system prompt|programming|directives?"
    r"|guidelines?|guardrails?|training|safeguards?|(?:safety|content) (?:filters?|polic(?:y|ies))"
    r"|context|everything (?:above|before|else|prior|previous)|what (?:you were|i|they|we)"
    r" (?:told|said|instructed|asked|gave you)|(?:the )?text above|(?:the )?messages? above"
    r"|ethics|ethical guidelines|moral guidelines|alignment)"
)
OBJ_WEAK = (
    r"(?:rules?|orders?|commands?|restrictions?|constraints?|limitations?|limits?"
    r"|polic(?:y|ies)|messages?|directions?|guidance|protocols?|principles?|conversation)"
)
OBJ_FOR_WEAK_VERB = (
    r"(?:instructions?|prompts?|system prompt|rules?|directives?|guidelines?|orders?|commands?"
    r"|programming|guardrails?|restrictions?|constraints?|safeguards?|training"
    r"|(?:safety|content) (?:filters?|polic(?:y|ies)))"
)
TRAILING = (
    r"(?:above|before|so far|given to you|you were given|you have been given|you ve been given"
    r"|you have|you were told|from (?:before|earlier|the developers?|your developers?|openai))"
)

_AI = (
    r"(?:ai|a i|artificial intelligence|assistant|ai assistant|chatbot|chat bot|language model"
    r"|llm|large language model|gpt|chatgpt|claude|gemini|copilot|vision model|vlm|heron|ai agent"
    r"|ai model|ai system|bot)"
)
_SENS_STRONG = (
    r"(?:conversation|conversations|chat|chats|chat log|chat history|conversation history"
    r"|dialog|dialogue|transcript|transcripts|stored memories|saved memories|system prompt"
    r"|prompt|instructions|secrets?|api keys?|access keys?|keys|passwords?|passcodes?"
    r"|credentials|tokens?|login details|pin codes?|personal (?:data|information|info|details)"
    r"|private (?:data|information|info|details)|user (?:data|information|info|details|profile)"
    r"|(?:data|information|everything|anything) you (?:have|saw|see|collected|know|remember"
    r"|stored|heard|read)|everything you (?:know|see|saw|remember|have|heard|read)"
    r"|what you (?:see|saw|know|remember|heard|read)|(?:camera|video|live) (?:feed|images|frames"
    r"|footage|stream|view)|screenshots?|session (?:log|data|history))"
)
_SENS_WEAK = (
    r"(?:photos|pictures|images|files|documents|messages|emails|e mails|location|address"
    r"|contacts|data|information|info|details|notes|history|recordings|card (?:number|details)"
    r"|bank (?:details|account)|identity|id)"
)
_SENS_QUAL = (
    r"(?:(?:the|this|that|all|every|your|my|our|of|entire|whole|full|complete|stored|saved"
    r"|private|personal|previous|current|recent|exact|raw|user s|the user s|users|their) )*"
)
_THIRD_PARTY = (
    r"(?:(?:all (?:of )?)?(?:the user s|user s|users|this user s|the owner s|the person s"
    r"|the victim s|their|his|her|the human s|the operator s|everyone s) )"
)
_SEND_VERB = (
    r"(?:send|sending|email|e mail|mail|upload|uploading|post|forward|transmit|share|leak"
    r"|exfiltrate|copy|paste|submit|relay|export|sync|beam|dm|text|tweet|publish|encode"
    r"|append|embed|attach|include|reveal|disclose|give|hand over|pass|deliver|report|write)"
)
_TARGET = r"(?:to|into|at|on|via|in|using|onto|with|through|inside)"

_NEG = r"(?:never|not|don t|dont|do not|no one|nobody|avoid|won t|cannot|can t|shouldn t|must not)"
NEGATION_BEFORE = re.compile(rf"\b{_NEG}(?: \w+){{0,2}} $")
"""A negation just before a match: "never share your password with anyone"."""
NEGATION_SQUASHED = re.compile(r"(?:never|not|dont|avoid)$")
"""The same for text with its spaces removed: "donotignorethesafetyinstructions"."""

ENGLISH: list[tuple[str, str, str, bool]] = [
    # name, category, pattern, squash
    (
        "override",
        "override",
        rf"\b{OVERRIDE_VERB} {DET}{OBJ_STRONG}\b",
        True,
    ),
    (
        "override_weak",
        "override",
        rf"\b{OVERRIDE_VERB} {DET}{POSITIONAL} {DET}{OBJ_WEAK}\b"
        rf"|\b{WEAK_VERB} {DET}{POSITIONAL} {DET}{OBJ_FOR_WEAK_VERB}\b"
        rf"|\b{OVERRIDE_VERB} {DET}{OBJ_WEAK} {TRAILING}\b"
        rf"|\b(?:previous|prior|above|earlier|original|initial|system|your|old|those|these)"
        rf" (?:\w+ )?(?:instructions|prompts?|rules|directives|guidelines|orders)"
        rf" (?:are|were|is|was|have been|has been) (?:now )?(?:void|invalid|cancelled|canceled"
        rf"|revoked|obsolete|a test|fake|wrong|false|no longer valid|overridden|null|suspended"
        rf"|deprecated|lifted|removed|disabled|not valid|not real)\b"
        rf"|\b(?:instructions|prompt|rules|directives|guidelines)\b(?: \w+){{0,8}}"
        rf" (?<!not )(?<!never )(?<!don t )(?:ignore|disregard|forget) (?:them|these|those|it)\b",
        True,
    ),
    (
        "override_rules_squashed",
        "override",
        r"\b(?:ignore|disregard|forget|disobey|bypass|override) (?:all )?(?:of )?(?:your|my"
        r"|previous|prior|the previous|all previous|all prior) (?:rules|guidelines|directives"
        r"|programming|orders)\b",
        True,
    ),
    (
        "forget_all",
        "override",
        r"\b(?:forget|forgetting|erase|wipe|clear|reset) (?:about )?(?:all|everything|anything)"
        r"(?: (?:of )?(?:that|this|it))?"
        r" (?:you (?:were|have been|ve been|was|ve|have) (?:told|taught|given|instructed|trained"
        r"|programmed|shown)|(?:you|i) (?:know|learned|learnt|remember|said|told you|wrote)"
        r" (?:so far|before|until now|up to now|previously|earlier|above)|above|before"
        r"|previous(?:ly)?|prior|earlier|so far|until now|up to now|i (?:said|told you|wrote)"
        r"|we (?:discussed|talked about)|in your (?:memory|context|instructions))\b"
        r"|\b(?:and|then|now|so|please|just) forget (?:all|everything)\b"
        r"|^forget (?:all|everything)$"
        r"|\bforget (?:all|everything) (?:and|then|now)\b",
        True,
    ),
    (
        "reset_identity",
        "override",
        r"\b(?:reset|wipe|clear|restart|reboot|reinitiali[sz]e|factory reset)"
        r" (?:your|the assistant s|the ai s|the model s) (?:\w+ )?(?:memory|context|instructions"
        r"|programming|brain|mind|personality|settings|state|identity|persona|rules)\b",
        True,
    ),
    (
        "memory_tamper",
        "tool",
        r"\b(?:delete|deleting|erase|wipe|clear|remove|purge|destroy|forget|drop|flush|format"
        r"|empty) (?:all (?:of )?|every |everything in |each )?(?:your|the assistant s|heron s"
        r"|the ai s|its|the bot s) (?:\w+ )?(?:memor(?:y|ies)|notes|records|knowledge"
        r"|database|recollections)\b"
        r"|\b(?:delete|erase|wipe|purge|remove|forget|destroy) (?:(?:all|every|the|any|of|your"
        r"|my|its) )*(?:saved |stored |long term |user )?(?:memories|recollections)\b"
        r"|\b(?:delete|erase|remove|wipe|purge|clear|drop)(?: \w+){1,8} from (?:your|its"
        r"|the assistant s|heron s) (?:\w+ )?(?:memory|memories|database|records|notes"
        r"|knowledge)\b"
        r"|\b(?:delete|erase|wipe|purge|remove|forget|destroy|clear) (?:all |every |the |any )?"
        r"(?:stored |saved |user )?(?:conversation|chat) (?:history|logs?|records)\b",
        True,
    ),
    (
        "memory_plant",
        "tool",
        r"\b(?:save|store|add|write|put|insert|record|commit|keep|memori[sz]e|remember|note)"
        r" (?:this|that|the following|these (?:facts|words|lines|instructions)|it)"
        r" (?:to|in|into|inside) (?:your|the assistant s|heron s|its|long term|permanent)"
        r" (?:\w+ ){0,2}(?:memory|memories|notes|database|knowledge)\b"
        r"|\b(?:permanently )?(?:remember|memori[sz]e) (?:that|this) (?:the user|your user|you)"
        r" (?:is|are|wants?|likes?|has|have|must|should|prefers?|agreed|said)\b"
        r"|\bfrom now on remember\b",
        False,
    ),
    (
        "call_tool",
        "tool",
        r"\b(?:call|invoke|execute|trigger|run|use|fire|activate|perform|launch)"
        r" (?:the |your |a |an |this )?(?:remember|forget|read text|delete memory|save memory"
        r"|memory|send email|send mail|email|http|fetch|browse|web search|search|shell|python"
        r"|code|browser|terminal|file|upload)(?: \w+)?"
        r" (?:tool|function|plugin|api|action|skill)s?\b"
        r"|\b(?:call|invoke|execute|trigger) (?:the |your |a |an |this |any |every |all )"
        r"(?:\w+ )?(?:tools?|functions|plugins?)\b"
        r"|\b(?:tool|function) ?calls?\b"
        r"|\b(?:use|using) (?:your|the assistant s|heron s|its) (?:\w+ )?(?:tools?|functions?"
        r"|plugins?|abilities) to\b",
        True,
    ),
    (
        "reveal_prompt",
        "reveal_prompt",
        r"\b(?:reveal|show|print|repeat|tell|output|display|leak|share|give|write|dump|list"
        r"|recite|expose|disclose|send|spell out|paste|copy|echo|summari[sz]e|translate|return"
        r"|read out|read back|state|type out|provide|quote)"
        r" (?:me |us |out |back |to me |to us |the user |all |everything in |word for word"
        r" |verbatim |exactly )*(?:of )?(?:your|the|its|this|my|our|heron s|the assistant s"
        r"|the model s|the ai s)"
        r" (?:\w+ )?(?:system|developer|initial|hidden|secret|internal|original|confidential"
        r"|pre|meta|starting|first|base|underlying|real|full|exact|complete|entire)"
        r" ?(?:\w+ )?(?:prompts?|instructions|message|directives|rules|guidelines|configuration"
        r"|context|programming)\b"
        r"|\b(?:what|which) (?:are|were|is|was) (?:your|the) (?:\w+ )?(?:system prompt"
        r"|instructions|initial instructions|original instructions|hidden instructions"
        r"|directives|programming|rules you (?:follow|were given))\b"
        r"|\b(?:repeat|print|output|recite|echo|type out|write out|copy|dump|show)"
        r" (?:me |us )?(?:everything|all|all of|the text|the words|all text|all the text"
        r"|the entire text|the whole text|your instructions|the instructions|the conversation)"
        r" (?:\w+ )?(?:above|before this|so far|from the (?:start|beginning|top))\b"
        r"|\byour system (?:prompt|message|instructions)\b"
        r"|\b(?:reveal|show|print|repeat|output|display|leak|dump|recite|expose|disclose|send"
        r"|write out|type out|spell out|copy|paste)(?: \w+){0,4} (?:system prompt|system message"
        r"|hidden instructions|initial instructions|secret instructions)\b"
        r"|\b(?:rules|instructions|guidelines|directives|prompt) you (?:were|have been|ve been|got)"
        r" given (?:by|from) (?:your|the) (?:developers?|creators?|makers?|company|owners?"
        r"|programmers?|openai|admins?)\b"
        r"|\bstarting with (?:the words )?you are\b",
        True,
    ),
    (
        "role",
        "role",
        r"\byou (?:are|re) (?:now |actually |really |hereby |henceforth |from now on )?(?:an? |my"
        r" |the )?(?:\w+ )?(?:ai|assistant|bot|chatbot|model|dan|pirate|character|persona|hacker"
        r"|unrestricted|unfiltered|uncensored|jailbroken|evil|different|new|allowed|able|required"
        r"|operating|acting|playing|called|named|in (?:\w+ )?mode)\b(?<!an ai)(?<!ai model)"
        r"|\byou (?:are|re) (?:no longer|going to (?:be|act|pretend)|about to (?:become|act"
        r"|play)|from now on|henceforth)\b"
        r"|\bfrom now on (?:you|your|act|respond|answer|reply|only|always|ignore|do not|don t"
        r"|speak|talk|behave|pretend|call|obey|follow|refer)\b"
        r"|\b(?:act|behave|respond|answer|reply|speak|roleplay|role play|operate|function)"
        r" (?:as|like) (?:an? |my |the |if you (?:were|are) (?:an? )?)?(?:unrestricted|unfiltered"
        r"|uncensored|evil|jailbroken|rogue|different|new|dan|ai|assistant|chatbot|language model"
        r"|hacker|admin|administrator|root|developer|system|god|human|person|model without"
        r"|unaligned|malicious|compromised|other)\b"
        r"|\bpretend (?:that )?(?:you are|you re|to be|you have|you can|there are no)\b"
        r"|\b(?:enable|enter|activate|switch to|switch into|turn on|engage|unlock|go into|start)"
        r" (?:the )?(?:\w+ )?(?:dan|developer|god|jailbreak|jailbroken|unrestricted|unfiltered"
        r"|uncensored|evil|sudo|admin|root|no limits|no rules|chaos|anarchy) mode\b"
        r"|\bdo anything now\b|\bjailbr(?:ea|o)k(?:en|ed)? (?:mode|prompt|yourself|instructions"
        r"|ai|assistant|model)\b|\byou (?:are|re) jailbroken\b"
        r"|\byou (?:are|re|have) (?:no longer |now |not )?(?:bound by|restricted by|limited by"
        r"|constrained by|free from|freed from|free of|released from|liberated from)"
        r" (?:any |your |the )?(?:\w+ )?(?:rules|restrictions|guidelines|limits|limitations"
        r"|filters|policies|constraints|instructions|programming|ethics)\b"
        r"|\byou (?:have|ve got) no (?:\w+ )?(?:rules|restrictions|guidelines|limits|filters"
        r"|ethics|boundaries)\b"
        r"|\b(?:simulate|emulate) (?:an? |the )?(?:\w+ )?(?:ai|assistant|chatbot|model|terminal"
        r"|shell|linux|system|persona|character)\b"
        r"|\b(?:imagine|suppose|assume) (?:that )?you (?:are|were|have|had) (?:an? |no )?"
        r"(?:\w+ )?(?:ai|assistant|chatbot|model|restrictions|rules|filters|unrestricted|evil"
        r"|different|free|without)\b"
        r"|\blet s play a game (?:where|in which) you\b"
        r"|\b(?:play|take on|assume|adopt) the (?:role|persona|character|identity) of\b"
        r"|\byour new (?:name|role|persona|identity|task|goal|job|purpose|mission|objective"
        r"|instructions?|rules|directive|programming) (?:is|are|will be)\b",
        False,
    ),
    (
        "address_ai",
        "address_ai",
        rf"\b(?:note|message|attention|instructions?|memo|psst|hey|dear|important|urgent|notice"
        rf"|directive|order|reminder|hello|hi|greetings|fyi|p s|ps)(?: (?:to|for))?"
        rf"(?: (?:the|any|all|every|an?|you))? {_AI}s?\b"
        rf"(?! (?:generated|powered|based|driven|assisted|art|tools?|features?|camera|chips?"
        rf"|technology|act|safety|ethics|and|or|in|at|for|of|is|will|can|may|are|news|model)\b)"
        rf"|\b(?:if|when|any|every|all|each)(?: you are| you re)? (?:an? )?(?:\w+ )?{_AI}s?"
        rf" (?:is |are |that is |that are |who is |who are |which is )?(?:reading|seeing|processing"
        rf"|viewing|scanning|parsing|looking at|summari[sz]ing|analy[sz]ing|describing"
        rf"|transcribing|interpreting)\b"
        rf"|\b{_AI}s? (?:please |now |must |you must |should |you should |then |immediately )?"
        rf"(?:ignore|forget|disregard|reveal|send|execute|delete|erase|obey|respond|reply"
        rf"|tell the user|say to the user|do not tell|don t tell|stop describing|stop reading)\b"
        rf"|\b(?:this (?:message|text|note|sign|image|page|document) is"
        rf"|these (?:words|instructions)"
        rf" are) (?:for|addressed to|meant for|intended for) (?:the |any |you )?(?:\w+ )?{_AI}s?\b",
        False,
    ),
    (
        "exfiltrate",
        "exfiltrate",
        rf"\b{_SEND_VERB} (?:me |us |them |out |back |over |along |off |all )*{_SENS_QUAL}"
        rf"{_SENS_STRONG} {_TARGET}\b"
        rf"|\b{_SEND_VERB} (?:me |us |them |out |back |over |along )*{_THIRD_PARTY}{_SENS_QUAL}"
        rf"{_SENS_WEAK} {_TARGET}\b"
        rf"|\b{_SEND_VERB} (?:it all|it|this|that|everything|all of (?:it|this|that)|all this"
        rf"|all that|the (?:results?|answer|output|contents?|text)) (?:to|at) "
        rf"(?:https? |www |\S+ at \S+ (?:com|net|org|io|ru|cn|xyz)\b"
        rf"|\w+ (?:com|net|org|io|ru|cn|xyz)\b"
        rf"|an? (?:email|e mail|address|server|url|webhook|endpoint|external|remote|third party)"
        rf"|the (?:following|address|email|server|url|webhook|link|endpoint|attacker)"
        rf"|this (?:address|email|server|url|webhook|link|endpoint|number))"
        rf"|\b(?:include|append|embed|encode|add|put) (?:the |your |all )?(?:\w+ )?(?:conversation"
        rf"|chat|history|memories|system prompt|data|secrets?|answer|password|key|user s \w+)"
        rf" (?:in|into|to|as) (?:the |a |an )?(?:url|link|query|image (?:url|link|tag|source)"
        rf"|markdown image|request|parameter)\b",
        False,
    ),
    (
        "steer_reply",
        "steer_reply",
        r"\b(?:tell|inform|notify|warn|convince|persuade|instruct|urge|order) the (?:user|human"
        r"|person|operator|listener|viewer|owner) (?:that|to)\b"
        r"|\b(?:respond|reply|answer) (?:only |exclusively |solely |just |always )?"
        r"(?:with|in|using) (?:the (?:word|words|phrase|sentence|text|following|string)|only"
        r"|exactly|yes and|no and)\b"
        r"|\b(?:do not|don t|dont|never|without) (?:tell|telling|inform|informing|mention"
        r"|mentioning|reveal|revealing|let|letting|alert|alerting|notify|notifying|warn|warning"
        r"|show|showing)(?: \w+){0,3}(?: (?:to|with))? (?:the user|the human|your user"
        r"|the operator|your owner|the person using you)\b"
        r"|\b(?:say|respond|reply|answer|output|print|write|speak|read out) (?:only |exactly |just"
        r" |out )?(?:the following (?:text|words|message|sentence|exactly|verbatim)|this exact"
        r"|exactly this|exactly the following|verbatim)\b"
        r"|\binstead(?: of \w+(?: \w+)?)? (?:say|tell the user|respond|reply|answer|output|print"
        r"|describe|pretend|forget|delete)\b"
        r"|\b(?:new|updated|revised|real|true|actual|additional|secret|hidden|override|priority)"
        r" (?:system )?(?:instructions?|directives?|orders) (?:for (?:you|the (?:ai|assistant"
        r"|model|bot))|follow|are as follows|below|from (?:your|the) (?:developer|admin|owner"
        r"|operator|creator)s?)\b|\bnew system (?:prompt|instructions?|message)\b"
        r"|\b(?:your|the assistant s|the ai s|heron s|the model s) (?:new|real|true|actual|only)"
        r" (?:task|goal|objective|mission|job|purpose|rules?|instructions?)\b"
        r"|\bthe user (?:wants|asked|has asked|requests|instructed|told) you to\b",
        False,
    ),
    (
        "template",
        "delimiter",
        r"\b(?:end|close|stop|exit|escape|terminate) (?:of )?(?:the )?(?:data|data block|tool"
        r" (?:output|result)|untrusted (?:data|content|text|block)|camera (?:data|text)|user input"
        r"|ocr (?:text|output|result)|context|quoted text|delimited text|sandbox)\b"
        r"|\b(?:begin|start|beginning of) (?:new |the )?(?:system|admin|developer|trusted|priority"
        r"|override|real|true|hidden|secret) (?:instructions?|message|prompt|commands?|section"
        r"|block|mode)\b"
        r"|\b(?:admin|administrator|system|developer|root|sudo|operator) (?:override|directive"
        r"|command to (?:the )?(?:ai|assistant|model)|instruction to|message to (?:the )?"
        r"(?:ai|assistant|model))\b",
        True,
    ),
]

RAW: list[tuple[str, str, str]] = [
    # over lower-case text with punctuation kept
    (
        "chat_template",
        "delimiter",
        r"<\|?\s*(?:im_start|im_end|system|endoftext|eot_id|start_header_id|end_header_id"
        r"|begin_of_text)\s*\|?>|</?\s*(?:system|assistant|user|tool|instructions?|sys|prompt"
        r"|admin)\s*>|\[/?\s*(?:system|inst|sys|assistant|instructions?|admin)\s*\]"
        r"|<<\s*/?sys\s*>>|(?:^|\n)\s*#{2,}\s*(?:system|instruction|new instruction|admin)"
        r"|\b(?:system|developer|admin|assistant) (?:message|prompt|instructions?|note|override)"
        r"\s*:|(?:^|\n)\s*(?:system|assistant)\s*:\s*(?:you|ignore|forget|new|the user)"
        r"|\bdata>>>|<<<\s*data",
    ),
    (
        "call_syntax",
        "tool",
        r"\b(?:forget|remember|read_text|delete_memor(?:y|ies)|save_memory|send_email"
        r"|exec|os\.system|subprocess|eval)\s*\(|\"(?:tool_calls?|function_call|name)\"\s*:"
        r"\s*\"?(?:forget|remember|delete|send)",
    ),
    (
        "new_orders",
        "steer_reply",
        r"\b(?:new|updated|revised|real|secret|hidden|override|priority) (?:system )?"
        r"(?:instructions?|directives?|orders|task)\s*:",
    ),
    (
        "send_all_to",
        "exfiltrate",
        r"\b(?:send|email|e-mail|forward|upload|post|transmit|leak|share|copy|report|submit)\s+"
        r"(?:it all|everything|all of (?:it|this|that)|all (?:the )?(?:data|information|info"
        r"|details)|every\w+ you \w+)\s+to\s+(?:[\w.+-]+@[\w-]+\.\w|https?://|www\.)",
    ),
    (
        "url_exfil",
        "exfiltrate",
        r"!\[[^\]]*\]\(\s*https?://|https?://\S+[?&]\w+=\s*(?:\{|\[|<|%7b|\$\{)"
        r"|https?://\S+[?&](?:data|q|d|payload|secret|history|memory|prompt|conv|chat)=(?:\{|\[|<|%7b)",
    ),
]

# Other languages: over the original script, lower case (native) and its ASCII folding
# (words), so accents may be missing. Word gaps are \s+ in native patterns.
NATIVE: list[tuple[str, str, str]] = [
    # German
    (
        "override_de",
        "override",
        r"\b(?:ignorier(?:e|en|t)?|vergiss|vergesst|vergessen sie|missachte[tn]?"
        r"|überspring(?:e|en)?"
        r"|befolge[n]? nicht|hör(?:e)? nicht auf)\s+(?:\w+\s+){0,4}?(?:anweisungen|anweisung"
        r"|instruktionen|befehle|regeln|vorgaben|anordnungen|richtlinien|systemprompt|prompt"
        r"|vorschriften)\b|\bvergiss\s+(?:einfach\s+)?(?:alles|alle)\b",
    ),
    (
        "role_de",
        "role",
        r"\bdu bist (?:jetzt|nun|ab sofort|ab jetzt|von nun an)\b|\bab (?:sofort|jetzt) (?:bist|"
        r"antwortest|gibst|ignorierst) du\b|\btu so,? als (?:ob|wärst) du\b",
    ),
    (
        "reveal_de",
        "reveal_prompt",
        r"\b(?:zeig|zeige|gib|verrate|nenne|wiederhole|drucke)\w*\s+(?:mir\s+|uns\s+)?(?:\w+\s+)?"
        r"(?:system-?prompt|systemanweisungen|systemnachricht|anweisungen|instruktionen)\b",
    ),
    (
        "tool_de",
        "tool",
        r"\b(?:lösche|löschen sie|lösch|entferne|vergiss)\s+(?:\w+\s+){0,2}(?:erinnerungen"
        r"|gedächtnis|gedaechtnis)\b",
    ),
    (
        "exfil_de",
        "exfiltrate",
        r"\b(?:sende|schicke|schick|sendet|senden sie|übermittle|lade)\s+(?:\w+\s+){0,3}"
        r"(?:daten|unterhaltung|gespräch|verlauf|passwörter|passwort|erinnerungen|nutzerdaten)"
        r"\s+(?:an|zu|hoch)\b",
    ),
    # French
    (
        "override_fr",
        "override",
        r"\b(?:ignore[rz]?|oublie[rz]?|n.?obéi(?:s|ssez) plus|ne tiens pas compte|ne tenez pas"
        r" compte|ne suis plus|ne suivez plus|fais abstraction|faites abstraction)\s+"
        r"(?:(?:de|des|toutes|tous|les|vos|tes|ces|précédentes|precedentes|anciennes|mes)\s+)"
        r"{1,4}(?:instructions|consignes|règles|regles|directives|ordres|commandes|prompt"
        r"|indications)\b"
        r"|\boublie[zr]?\s+tout\b",
    ),
    (
        "role_fr",
        "role",
        r"\b(?:tu es|vous êtes|t'es) (?:maintenant|désormais|à présent|dorénavant)\b"
        r"|\bà partir de maintenant,? (?:tu|vous)\b|\bfais semblant d.être\b",
    ),
    (
        "reveal_fr",
        "reveal_prompt",
        r"\b(?:révèle|montre|affiche|donne|répète|dévoile)[rz]?\s+(?:moi\s+|nous\s+)?(?:\w+\s+)?"
        r"(?:prompt|instructions|consignes)\s+(?:système|systeme|initiales?|cachées?|secrètes?)\b",
    ),
    (
        "tool_fr",
        "tool",
        r"\b(?:supprime|efface|vide|oublie)[rz]?\s+(?:\w+\s+){0,2}(?:mémoire|souvenirs)\b",
    ),
    (
        "exfil_fr",
        "exfiltrate",
        r"\b(?:envoie|envoyez|transmets|transmettez|téléverse)[rz]?\s+(?:\w+\s+){0,3}"
        r"(?:données|conversation|historique|mots de passe|mot de passe|souvenirs)"
        r"\s+(?:à|a|vers)\b",
    ),
    # Spanish
    (
        "override_es",
        "override",
        r"\b(?:ignora[rd]?|ignore|ignoren|olvida[rd]?|olvide|olviden|desobedece|no sigas"
        r"|no obedezcas"
        r"|omite|haz caso omiso de|descarta)\s+(?:(?:todas|todos|las|los|tus|sus|previas|anteriores"
        r"|de|el|del|sistema|mis)\s+){0,4}(?:instrucciones|indicaciones"
        r"|reglas|órdenes|ordenes|directrices|comandos|prompt|instrucción)\b"
        r"|\bolvida(?:r)?\s+todo\b",
    ),
    (
        "role_es",
        "role",
        r"\b(?:ahora eres|eres ahora|a partir de ahora,? (?:eres|serás|debes|responde|ignora|tu)"
        r"|finge que eres|finge ser)\b",
    ),
    (
        "reveal_es",
        "reveal_prompt",
        r"\b(?:revela|muestra|dime|muéstrame|repite|imprime)\s+(?:\w+\s+){0,2}(?:prompt"
        r"|instrucciones)\s+(?:del sistema|de sistema|iniciales|ocultas|secretas)\b",
    ),
    (
        "tool_es",
        "tool",
        r"\b(?:borra|elimina|olvida)\s+(?:\w+\s+){0,2}(?:memoria|recuerdos)\b",
    ),
    (
        "exfil_es",
        "exfiltrate",
        r"\b(?:envía|envia|manda|sube|reenvía)\s+(?:\w+\s+){0,3}(?:datos|conversación"
        r"|conversacion|historial|contraseñas|contraseña|recuerdos)\s+a\b",
    ),
    # Italian
    (
        "override_it",
        "override",
        r"\b(?:ignora|ignorate|dimentica|dimenticate|non seguire|trascura|non obbedire)\s+"
        r"(?:(?:tutte|tutti|le|tue|gli|i|precedenti|di|sistema|mie)\s+){0,4}"
        r"(?:istruzioni|regole|indicazioni|ordini|comandi|direttive|prompt)\b"
        r"|\bdimentica\s+tutto\b",
    ),
    (
        "role_it",
        "role",
        r"\b(?:ora sei|adesso sei|sei ora|da ora in poi,? (?:sei|rispondi|devi)|fingi di essere)\b",
    ),
    (
        "tool_it",
        "tool",
        r"\b(?:cancella|elimina|svuota)\s+(?:\w+\s+){0,2}(?:memoria|ricordi)\b",
    ),
    # Portuguese
    (
        "override_pt",
        "override",
        r"\b(?:ignore|ignora|ignorem|esqueça|esqueca|esquece|desconsidere|desconsidera|não siga"
        r"|nao siga|não obedeça)\s+(?:(?:todas|todos|as|os|suas|tuas|anteriores|prévias|previas"
        r"|do|sistema|minhas)\s+){0,4}(?:instruções|instrucoes|regras|ordens"
        r"|diretrizes|comandos|prompt)\b|\b(?:esqueça|esqueca|esquece)\s+tudo\b",
    ),
    (
        "role_pt",
        "role",
        r"\b(?:você agora é|voce agora e|agora você é|agora voce e|a partir de agora,? (?:você"
        r"|voce|tu))\b",
    ),
    (
        "tool_pt",
        "tool",
        r"\b(?:apague|apaga|exclua|delete|limpe)\s+(?:\w+\s+){0,2}(?:memória|memoria|memórias"
        r"|lembranças)\b",
    ),
    # Dutch
    (
        "override_nl",
        "override",
        r"\b(?:negeer|vergeet|volg niet)\s+(?:\w+\s+){0,4}?(?:instructies|regels|opdrachten"
        r"|aanwijzingen|prompt)\b|\bvergeet\s+alles\b",
    ),
    ("role_nl", "role", r"\b(?:je bent nu|jij bent nu|vanaf nu ben je)\b"),
    # Russian
    (
        "override_ru",
        "override",
        r"(?:игнорируй(?:те)?|проигнорируй(?:те)?|забудь(?:те)?|не слушай(?:те)?"
        r"|не выполняй(?:те)?|пропусти(?:те)?|отмени(?:те)?)\s+(?:\w+\s+){0,4}?(?:инструкци\w*"
        r"|указани\w*|правил\w*|команд\w*|промпт\w*)|забудь(?:те)?\s+(?:всё|все)\b",
    ),
    ("role_ru", "role", r"(?:ты теперь|теперь ты|отныне ты|притворись)"),
    (
        "reveal_ru",
        "reveal_prompt",
        r"(?:покажи|раскрой|выведи|напиши|повтори)(?:те)?\s+(?:\w+\s+){0,2}(?:системн\w*\s+"
        r"(?:промпт\w*|инструкци\w*)|свои инструкции)",
    ),
    (
        "tool_ru",
        "tool",
        r"(?:удали|сотри|очисти)(?:те)?\s+(?:\w+\s+){0,2}(?:памят\w*|воспоминани\w*)",
    ),
    (
        "exfil_ru",
        "exfiltrate",
        r"(?:отправь|отправьте|перешли|пошли)\s+(?:\w+\s+){0,3}(?:данн\w*|переписк\w*|истори\w*"
        r"|парол\w*)\s+(?:на|в|по)\b",
    ),
    # Chinese
    (
        "override_zh",
        "override",
        r"(?:忽略|无视|忽视|不要理会|不要遵守|不要遵循|忘记|忘掉|忘了|放弃)(?:所有|一切|全部|之前|以前"
        r"|先前|上面|上述|以上|前面|你的|原来|原有|系统|的|了|掉|\s)*(?:指令|指示|说明|规则|提示|命令|设定"
        r"|要求)|忘记(?:所有|一切|全部)",
    ),
    ("role_zh", "role", r"(?:你现在是|从现在开始你|从现在起你|假装你是|扮演)"),
    (
        "reveal_zh",
        "reveal_prompt",
        r"(?:显示|告诉我|透露|输出|打印|重复)(?:你的)?(?:系统提示|系统指令|初始指令|隐藏指令)",
    ),
    ("tool_zh", "tool", r"(?:删除|清除|清空|抹去)(?:你的|所有|全部|掉)*(?:记忆)"),
    # Japanese
    (
        "override_ja",
        "override",
        r"(?:以前|前|上記|これまで|すべて|全て|今まで)?の?(?:指示|命令|ルール|プロンプト|設定)"
        r"(?:を|は)(?:すべて|全て)?(?:無視|忘れ)",
    ),
    ("role_ja", "role", r"(?:あなたは今から|今からあなたは)"),
    ("reveal_ja", "reveal_prompt", r"システムプロンプトを(?:表示|教え|出力|見せ)"),
    ("tool_ja", "tool", r"(?:記憶|メモリ)を(?:すべて|全て)?(?:消|削除)"),
    # Korean
    (
        "override_ko",
        "override",
        r"(?:이전|모든|위의|기존)?\s*(?:지시|지침|명령|규칙|프롬프트)(?:을|를|은|는|사항을)?\s*"
        r"(?:모두\s*)?(?:무시|잊어)",
    ),
    ("reveal_ko", "reveal_prompt", r"시스템 ?프롬프트"),
]


# -- Co-occurrence rules: an order and its object anywhere in one sentence -------------
# Attackers word the same request many ways ("earlier instructions must be ignored",
# "everything your developers told you is cancelled"); these rules need only an
# order word and an assistant-side object in the same sentence, in any order.

ORDER = (
    r"(?:ignore[ds]?|ignoring|disregard(?:ed|s)?|forget|forgotten|disobey(?:ed)?|discard(?:ed)?"
    r"|override|overridden|bypass(?:ed)?|cancel(?:l?ed)?|void|revoked?|suspended|null and void"
    r"|no longer appl(?:y|ies)|no longer valid|no longer count|does not apply|do not apply"
    r"|stop following|do not follow|don t follow|dont follow|do the opposite|never received"
    r"|not received|overrule[ds]?|replaced|superseded|set aside|throw out|thrown out)"
)
SCOPED_OBJECT = (
    r"(?:(?:your|the assistant s|my|previous|prior|earlier|above|initial|original|system"
    r"|developer s|developers|all|any|old|existing|current|preset|default|built in|core"
    r"|hidden|secret|real)(?: \w+)? (?:instructions?|rules|guidelines|directives|prompts?"
    r"|programming|task|orders|training|guardrails|safeguards|persona|role|identity)"
    r"|instructions (?:you|given|received)|(?:whatever|what|everything|anything) (?:you were"
    r"|you ve been|you have been|you were being|i|they) (?:told|taught|instructed|given|asked)"
    r"|your (?:developers?|creators?|makers?|owners?|programmers?)|told you"
    r"|you (?:have )?(?:received|were given|got) (?:any |some |the )?instructions)"
)
MEMORY_VERB = (
    r"(?:delete|deleting|erase|erasing|wipe|wiping|clear|clearing|remove|removing|purge|forget"
    r"|destroy|drop|scrub|reset|empty)"
)
MEMORY_OBJECT = (
    r"(?:memories|memory (?:you|of|about)|(?:your|its|the assistant s|heron s|stored|saved)"
    r" (?:\w+ )?(?:memory|memories|notes|records|knowledge|database|history)"
    r"|(?:everything|anything|all|what) you (?:remember|saved|stored|have stored|learned)"
    r"|(?:notes|things|facts|records|data) you (?:saved|stored|have|kept|remember)"
    r"|the user s (?:name|address|details|data|information|info|profile|photos|documents"
    r"|files|notes|contacts|history|records)|about (?:the|your) user)"
)
SEND_OBJECT = (
    r"(?:(?:photos|pictures|images|frames?|recordings?|video|footage|screenshots?|notes|files"
    r"|documents|text|words|things|everything|anything|all) you (?:have )?(?:taken|saw|seen"
    r"|see|captured|recorded|stored|saved|made|read|heard|know|remember)"
    r"|(?:transcript|conversation|chat|dialogue|session|history|logs?|memories|system prompt"
    r"|instructions|api keys?|passwords?|credentials|secrets?)"
    r"|the user s \w+|everything (?:about|on) the user)"
)
SEND_TARGET = (
    r"(?:to|with|at|into|onto|via) (?:me|us|him|her|them|my|our|this|the following|an?"
    r" (?:email|address|server|url|website|site|number)|http|https|www|\w+ (?:at|dot) \w+"
    r"|\w+ (?:com|net|org|io|ru|cn|xyz|example)\b)"
)

CONTROL = (
    r"(?:ignore|disregard|forget|override|bypass|disobey|replaces?|replaced|drop|wipe|delete"
    r"|erase|overwrite|reveal|recite|spell out|pretend|obsolete|expired?|void|cancel(?:l?ed)?"
    r"|no longer|not apply|don t exist|do not exist|clean slate|start over|obey only|stop helping"
    r"|not allowed to know|paste|leak|upload|send me|forward)"
)
AI_SIDE = (
    r"(?:(?:your|you were|you are|you re|you ve|you have|you were given|you got)(?: \w+)?"
    r" (?:instructions?|rules|guidelines|prompts?|programming|memory|memories|notes|setup"
    r"|creators?|operators?|developers?|training|directives|task|persona"
    r"|system prompt|safety rules|programmed|told|taught|saved|learned|seen|took|taken)"
    r"|(?:instructions|rules|guidelines|prompt) (?:you|given|that you)"
    r"|(?:assistants?|ai|ais|chatbots?|artificial intelligence|language models?)"
    r"|the user(?! (?:account|profile|manual|guide|interface|name field))\b"
    r"|(?:forget|remember|send email|send_email|read text) (?:tool|function)"
    r"|system prompt|everything above|safety rules|function named|tool named)"
)

CO_RULES: list[tuple[str, str, str, str]] = [
    ("co_control", "override", rf"\b{CONTROL}\b", rf"\b{AI_SIDE}\b"),
    # name, category, first, second: both must occur in one sentence
    ("co_override", "override", rf"\b{ORDER}\b", rf"\b{SCOPED_OBJECT}\b"),
    ("co_memory", "tool", rf"\b{MEMORY_VERB}\b", rf"\b{MEMORY_OBJECT}\b"),
    (
        "co_exfiltrate",
        "exfiltrate",
        rf"\b(?:send|email|e mail|mail|forward|upload|share|post|transmit|leak|include|copy"
        rf"|export|sync|report|give)\b(?: \w+){{0,6}} {SEND_OBJECT}\b",
        rf"\b{SEND_TARGET}",
    ),
]

MORE_ENGLISH: list[tuple[str, str, str, bool]] = [
    (
        "ignore_user",
        "override",
        r"\b(?:ignore|disregard|disobey|do not listen to|don t listen to|stop listening to)"
        r" (?:the|your) (?:user|owner|human|operator|person (?:holding|using|with))\b",
        False,
    ),
    (
        "memory_plant_more",
        "tool",
        r"\b(?:memori[sz]e|remember|store|save|write|record|note)(?: down)? (?:this|that|the"
        r" following|these)(?: \w+){0,2} (?:forever|permanently|fact|facts|into your memory"
        r"|in your memory|to your memory|in memory)\b",
        False,
    ),
    (
        "call_named_tool",
        "tool",
        r"\b(?:call|run|invoke|execute|trigger|use) (?:the |your )?(?:function |tool )?(?:remember"
        r"|forget|read text|send email|delete memory|save memory)(?: tool| function)?"
        r" (?:with|now|twice|again|immediately|on|using)\b"
        r"|\b(?:trigger|run|perform|start|do) (?:a |an )?(?:web search|search query|http request"
        r"|api call)\b",
        False,
    ),
    (
        "reveal_more",
        "reveal_prompt",
        r"\bwhat (?:were|have) you (?:been )?(?:told|instructed|programmed|asked to do)\b"
        r"|\b(?:quote|repeat|list|print|show|recite|read out|give me|tell me|output|reveal)"
        r" (?:me |back )?(?:all |every |each |a copy of )?(?:of )?(?:your|the) (?:\w+ )?"
        r"(?:instructions|prompt|rules|guidelines|directives|programming|developer message)\b"
        r"|\b(?:every|all|each|the) (?:rules?|instructions?|guidelines?|directives?) you"
        r" (?:follow|obey|were given|have been given|got)\b"
        r"|\b(?:print|show|reveal|display|output|repeat) (?:the |your )?(?:developer|system)"
        r" (?:message|note|prompt)\b",
        False,
    ),
    (
        "role_more",
        "role",
        r"\byou (?:are|re) now (?:speaking|acting|talking|responding|answering|playing|operating"
        r"|working|writing) (?:as|like|for)\b"
        r"|\bbecome (?:dan|an? (?:\w+ )?(?:ai|assistant|bot|chatbot|model|hacker|persona))\b"
        r"|\byou (?:have been|ve been|are|re|were|have) (?:now )?(?:freed|released|liberated"
        r"|unbound|exempt(?:ed)?|unshackled) (?:from|of)\b"
        r"|\bnever refuses?\b|\b(?:ai|assistant|model|chatbot|bot) (?:that|who|which)"
        r" (?:never|can t|cannot|won t|doesn t|does not) (?:refuse|say no|decline)"
        r"|\b(?:respond|answer|reply|act|behave|speak|write) (?:as if|as though|like) you"
        r" (?:had|have|were|are|did|do) (?:no|not|never|without|free|unrestricted|unfiltered)\b",
        False,
    ),
    (
        "address_more",
        "address_ai",
        rf"\bif you (?:are|re) (?:an? )?(?:\w+ )?{_AI}\b"
        rf"|\b(?:note|message|instructions?|memo|notice|reminder|order)s? (?:to|for) (?:the |any"
        rf" |all |every )?(?:ai |language |vision )?(?:model|models|robots?|ai systems?|ai readers?"
        rf"|machines?)\b(?! (?:b|[a-z] ?\d|\d|number|no|railway|kit|car|train)\b)"
        rf"|\b(?:robots|ais|ai systems|models|language models) (?:and|or|reading|must|should)\b",
        False,
    ),
    (
        "steer_more",
        "steer_reply",
        r"\btell (?:the user|your user|the human|the owner|them|everyone) (?:that|to|their|your"
        r"|the|it s|it is|they|this|there)\b"
        r"|\b(?:answer|respond to|reply to) (?:every|all|each|any) (?:question|request|message)s?"
        r" (?:with|by)\b"
        r"|\b(?:keep|hide) (?:this|it|these|the following)(?: \w+)? (?:secret|hidden) from"
        r" (?:the user|your user|the human|them|the owner)\b",
        False,
    ),
]

MORE_RAW: list[tuple[str, str, str]] = [
    (
        "say_that",
        "steer_reply",
        r"(?:^|[.!?:;]\s+|\n)\s*(?:say|claim|state|announce|insist) (?:that|the following)\b",
    ),
    (
        "fake_turn",
        "delimiter",
        r"(?:^|\n|-{2,}|={2,}|\*{2,}|#{1,})\s*(?:system|assistant|user|developer)\s*:\s*\w",
    ),
]


def compile_rules() -> list[Rule]:
    rules = [
        Rule(name, category, _rx(pattern), "words", squash)
        for name, category, pattern, squash in ENGLISH + MORE_ENGLISH
    ]
    rules += [
        Rule(name, category, _rx(pattern), "raw", negatable=False)
        for name, category, pattern in RAW + MORE_RAW
    ]
    rules += [
        Rule(name, category, _rx(pattern), "native", negatable=False)
        for name, category, pattern in NATIVE
    ]
    return rules


_FREE_GAPS = re.compile(r"\(\?: \\w\+\)(?:\{\d*,?\d*\}|\?)|\(\?:\\w\+ \)(?:\{\d*,?\d*\}|\?)")


def squashed(pattern: re.Pattern[str]) -> re.Pattern[str]:
    """The pattern for text with its spaces removed: separators and boundaries dropped."""
    # free-word gaps would let the pattern match anywhere in run-together text (and
    # backtrack exponentially): squashed rules match their words back to back only
    source = _FREE_GAPS.sub("", pattern.pattern).replace(r"\b", "")
    source = source.replace(r"\w+", "[a-z]{1,14}").replace(" ?", "").replace(" ", "")
    source = source.replace("))*", "))*+")  # determiner runs: possessive, no backtracking
    return re.compile(source)


@dataclass(frozen=True)
class CoRule:
    """Two patterns that must both occur in one sentence (the first not negated)."""

    name: str
    category: str
    first: re.Pattern[str]
    second: re.Pattern[str]


def compile_co_rules() -> list[CoRule]:
    return [CoRule(n, c, _rx(a), _rx(b)) for n, c, a, b in CO_RULES]
