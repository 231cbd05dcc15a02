//! How a chat conversation becomes one prompt (`docs/api.md`, Chat templates): a Jinja
//! template as Hugging Face tokenizer configs write them, rendered with `messages`,
//! `add_generation_prompt`, `bos_token` and `eos_token`. A deployment's template is, first
//! found: the deploy body's `chat_template`, the checkpoint's `tokenizer_config.json`
//! `chat_template`, the architecture's default below.

use std::path::Path;

use minijinja::{context, Environment, Error, ErrorKind};
use runtime::model::Architecture;
use serde::Serialize;

/// GPT-2 continues text: the conversation as `User:`/`Assistant:` turns, ending where the
/// assistant's next turn begins. System messages lead as plain text.
const GPT2_DEFAULT: &str = concat!(
    "{% for m in messages if m.role == 'system' %}{{ m.content }}\n\n{% endfor %}",
    "{% for m in messages if m.role != 'system' %}",
    "{{ 'User' if m.role == 'user' else 'Assistant' }}: {{ m.content }}\n",
    "{% endfor %}",
    "{% if add_generation_prompt %}Assistant:{% endif %}",
);

/// Flan-T5 follows instructions: one user message (after any system text) is the
/// instruction itself; a longer conversation is written out as turns for it to continue.
const T5_DEFAULT: &str = "\
{%- set turns = messages | rejectattr('role', 'eq', 'system') | list -%}
{%- for m in messages if m.role == 'system' %}{{ m.content }}\n\n{% endfor -%}
{%- if turns | length == 1 -%}{{ turns[0].content }}
{%- else -%}
{%- for m in turns %}{{ 'User' if m.role == 'user' else 'Assistant' }}: {{ m.content }}\n{% endfor -%}
{%- if add_generation_prompt %}Assistant:{% endif -%}
{%- endif -%}";

/// Where a deployment's template came from (status and error messages say which).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum TemplateOrigin {
    /// The deploy body's `chat_template`.
    Deployment,
    /// The checkpoint's `tokenizer_config.json`.
    TokenizerConfig,
    /// The architecture's default.
    Default,
}

/// One message of a conversation as the template sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a template cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChatTemplateError {
    #[error("the {origin} chat template does not compile: {reason}")]
    Compile {
        origin: &'static str,
        reason: String,
    },
    #[error("the {origin} chat template failed on this conversation: {reason}")]
    Render {
        origin: &'static str,
        reason: String,
    },
}

/// A compiled chat template with the special tokens it may refer to.
#[derive(Debug)]
pub struct ChatTemplate {
    env: Environment<'static>,
    origin: TemplateOrigin,
    bos_token: String,
    eos_token: String,
}

const NAME: &str = "chat";

impl ChatTemplate {
    /// Compiles `source`; the error names what is wrong and where.
    pub(crate) fn compile(source: &str, origin: TemplateOrigin) -> Result<Self, ChatTemplateError> {
        let mut env = Environment::new();
        // HF templates call Python string methods (`.strip()`) and `raise_exception`.
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function(
            "raise_exception",
            |message: String| -> Result<String, Error> {
                Err(Error::new(ErrorKind::InvalidOperation, message))
            },
        );
        env.add_template_owned(NAME, source.to_owned())
            .map_err(|e| ChatTemplateError::Compile {
                origin: origin.describe(),
                reason: detail(&e),
            })?;
        Ok(ChatTemplate {
            env,
            origin,
            bos_token: String::new(),
            eos_token: String::new(),
        })
    }

    /// The template a deployment of `architecture` uses: `override_source` when the deploy
    /// gave one, else the `chat_template` of `tokenizer_config.json` in `dir`, else the
    /// architecture's default. Special tokens come from `tokenizer_config.json`.
    pub(crate) fn for_model(
        override_source: Option<&str>,
        dir: &Path,
        architecture: Architecture,
    ) -> Result<Self, ChatTemplateError> {
        let config = read_tokenizer_config(dir);
        let from_config = config
            .as_ref()
            .and_then(|c| c.get("chat_template"))
            .and_then(serde_json::Value::as_str);
        let mut template = match (override_source, from_config) {
            (Some(source), _) => Self::compile(source, TemplateOrigin::Deployment)?,
            (None, Some(source)) => Self::compile(source, TemplateOrigin::TokenizerConfig)?,
            (None, None) => Self::compile(
                match architecture {
                    Architecture::Gpt2 => GPT2_DEFAULT,
                    Architecture::T5 => T5_DEFAULT,
                },
                TemplateOrigin::Default,
            )?,
        };
        if let Some(config) = &config {
            template.bos_token = special_token(config, "bos_token");
            template.eos_token = special_token(config, "eos_token");
        }
        Ok(template)
    }

    pub fn origin(&self) -> TemplateOrigin {
        self.origin
    }

    /// The prompt for `messages`, ready for the assistant's next turn.
    pub fn render(&self, messages: &[ChatMessage]) -> Result<String, ChatTemplateError> {
        let render_error = |e: Error| ChatTemplateError::Render {
            origin: self.origin.describe(),
            reason: detail(&e),
        };
        self.env
            .get_template(NAME)
            .and_then(|t| {
                t.render(context! {
                    messages => messages,
                    add_generation_prompt => true,
                    bos_token => self.bos_token,
                    eos_token => self.eos_token,
                })
            })
            .map_err(render_error)
    }
}

impl TemplateOrigin {
    fn describe(self) -> &'static str {
        match self {
            TemplateOrigin::Deployment => "deployment's",
            TemplateOrigin::TokenizerConfig => "tokenizer_config.json",
            TemplateOrigin::Default => "default",
        }
    }
}

/// minijinja's message with the line it points at.
fn detail(error: &Error) -> String {
    match error.line() {
        Some(line) => format!("{error} (line {line})"),
        None => error.to_string(),
    }
}

fn read_tokenizer_config(dir: &Path) -> Option<serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("tokenizer_config.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A special token as tokenizer configs write it: a string or `{"content": …}`.
fn special_token(config: &serde_json::Value, key: &str) -> String {
    match config.get(key) {
        Some(serde_json::Value::String(token)) => token.clone(),
        Some(serde_json::Value::Object(token)) => token
            .get("content")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(role: &str, content: &str) -> ChatMessage {
        ChatMessage {
            role: role.into(),
            content: content.into(),
            name: None,
        }
    }

    fn default_for(architecture: Architecture) -> ChatTemplate {
        let dir = tempfile::tempdir().expect("tempdir");
        ChatTemplate::for_model(None, dir.path(), architecture).expect("the default compiles")
    }

    #[test]
    fn gpt2_default_writes_turns_and_opens_the_assistants() {
        let template = default_for(Architecture::Gpt2);
        let prompt = template
            .render(&[
                message("system", "Be brief."),
                message("user", "Hi"),
                message("assistant", "Hello."),
                message("user", "Name a colour"),
            ])
            .expect("renders");
        assert_eq!(
            prompt,
            "Be brief.\n\nUser: Hi\nAssistant: Hello.\nUser: Name a colour\nAssistant:"
        );
    }

    #[test]
    fn t5_default_makes_one_user_message_the_instruction() {
        let template = default_for(Architecture::T5);
        assert_eq!(
            template
                .render(&[message("user", "Translate to German: Hello")])
                .expect("renders"),
            "Translate to German: Hello"
        );
        assert_eq!(
            template
                .render(&[
                    message("system", "Answer briefly."),
                    message("user", "Q1"),
                    message("assistant", "A1"),
                    message("user", "Q2"),
                ])
                .expect("renders"),
            "Answer briefly.\n\nUser: Q1\nAssistant: A1\nUser: Q2\nAssistant:"
        );
    }

    #[test]
    fn a_tokenizer_config_template_is_used_with_its_special_tokens() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("tokenizer_config.json"),
            r#"{"bos_token": {"content": "<s>"}, "eos_token": "</s>",
                "chat_template": "{{ bos_token }}{% for m in messages %}[{{ m.role }}] {{ m.content.strip() }}{{ eos_token }}{% endfor %}"}"#,
        )
        .expect("write");
        let template =
            ChatTemplate::for_model(None, dir.path(), Architecture::Gpt2).expect("compiles");
        assert_eq!(template.origin(), TemplateOrigin::TokenizerConfig);
        assert_eq!(
            template
                .render(&[message("user", "  hi ")])
                .expect("renders"),
            "<s>[user] hi</s>"
        );
        let overridden = ChatTemplate::for_model(
            Some("{{ messages[0].content }}!"),
            dir.path(),
            Architecture::Gpt2,
        )
        .expect("compiles");
        assert_eq!(overridden.origin(), TemplateOrigin::Deployment);
        assert_eq!(
            overridden.render(&[message("user", "x")]).expect("renders"),
            "x!"
        );
    }

    #[test]
    fn a_broken_template_is_refused_naming_the_reason_and_raise_exception_fails_a_render() {
        let error = ChatTemplate::compile("{% for m in messages %}", TemplateOrigin::Deployment)
            .expect_err("unclosed block");
        assert!(error.to_string().contains("does not compile"), "{error}");
        let strict = ChatTemplate::compile(
            "{% if messages[0].role != 'user' %}{{ raise_exception('first must be user') }}{% endif %}ok",
            TemplateOrigin::Deployment,
        )
        .expect("compiles");
        let error = strict
            .render(&[message("assistant", "x")])
            .expect_err("raises");
        assert!(error.to_string().contains("first must be user"), "{error}");
    }
}
